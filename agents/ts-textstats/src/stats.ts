// What the agent does: statistics of a text, computed locally (no LLM, no network).

/** Words per minute of an adult reading silently (Brysbaert 2019, non-fiction): for the reading time. */
export const READING_WORDS_PER_MINUTE = 238;

export interface TextStatistics {
  words: number;
  sentences: number;
  characters: number;
  charactersWithoutSpaces: number;
  averageWordLength: number;
  readingSeconds: number;
  /** The most frequent words (lowercased, 3 letters or more), most frequent first, ties alphabetically. */
  topWords: Array<[string, number]>;
}

const WORD = /[\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*/gu;
const SENTENCE_END = /[.!?…]+(?=\s|$)/gu;

/**
 * The text a request is about: what follows the first colon ("Count the words in this text: ..."),
 * or the whole message when it has none (a plan step sends the text alone).
 */
export function subjectOf(request: string): string {
  const colon = request.indexOf(":");
  const after = colon >= 0 ? request.slice(colon + 1).trim() : "";
  return after || request.trim();
}

export function textStatistics(text: string, top = 5): TextStatistics {
  const words = text.match(WORD) ?? [];
  const trimmed = text.trim();
  // A text that does not end with a sentence mark still holds one (unfinished) sentence.
  const marks = trimmed.match(SENTENCE_END)?.length ?? 0;
  const sentences = trimmed === "" ? 0 : marks + (/[.!?…]$/u.test(trimmed) ? 0 : 1);
  const letters = words.reduce((sum, w) => sum + [...w].length, 0);
  const counts = new Map<string, number>();
  for (const word of words) {
    const key = word.toLowerCase();
    if ([...key].length >= 3) counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const topWords = [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, top);
  return {
    words: words.length,
    sentences,
    characters: [...text].length,
    charactersWithoutSpaces: [...text.replace(/\s/gu, "")].length,
    averageWordLength: words.length === 0 ? 0 : Math.round((letters / words.length) * 10) / 10,
    readingSeconds: Math.ceil((words.length / READING_WORDS_PER_MINUTE) * 60),
    topWords,
  };
}

/** The answer, one line per chunk: the agent streams these as it writes them. */
export function answerLines(stats: TextStatistics): string[] {
  const top = stats.topWords.map(([word, n]) => `${word} (${n})`).join(", ") || "none";
  return [
    "Text statistics:\n",
    `- words: ${stats.words}\n`,
    `- sentences: ${stats.sentences}\n`,
    `- characters: ${stats.characters} (${stats.charactersWithoutSpaces} without spaces)\n`,
    `- average word length: ${stats.averageWordLength.toFixed(1)} letters\n`,
    `- reading time: about ${stats.readingSeconds} s at ${READING_WORDS_PER_MINUTE} words per minute\n`,
    `- most frequent words: ${top}\n`,
  ];
}
