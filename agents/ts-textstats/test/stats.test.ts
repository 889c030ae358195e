import assert from "node:assert/strict";
import { test } from "node:test";
import { answerLines, subjectOf, textStatistics } from "../src/stats.js";

test("counts words, sentences and characters", () => {
  const s = textStatistics("The quick brown fox jumps over the lazy dog. It barked!");
  assert.equal(s.words, 11);
  assert.equal(s.sentences, 2);
  assert.equal(s.characters, 55);
  assert.equal(s.charactersWithoutSpaces, 45);
  assert.equal(s.averageWordLength, 3.9);
  assert.deepEqual(s.topWords[0], ["the", 2]);
  assert.equal(s.readingSeconds, 3); // 11 words at 238 a minute
});

test("a text without a final mark still holds a sentence; an empty one holds none", () => {
  assert.equal(textStatistics("no full stop here").sentences, 1);
  assert.equal(textStatistics("One. Two? Three! Four").sentences, 4);
  assert.deepEqual(textStatistics("   "), {
    words: 0,
    sentences: 0,
    characters: 3,
    charactersWithoutSpaces: 0,
    averageWordLength: 0,
    readingSeconds: 0,
    topWords: [],
  });
});

test("words in any script, with apostrophes and hyphens, count once", () => {
  const s = textStatistics("L'été est très beau — don't you think? Ünïcödé well-known words.");
  assert.equal(s.words, 10);
  assert.equal(s.sentences, 2);
});

test("the subject is what follows the first colon, else the whole request", () => {
  assert.equal(subjectOf("Count the words in this text: one two: three"), "one two: three");
  assert.equal(subjectOf("one two three"), "one two three");
  assert.equal(subjectOf("ends with a colon:"), "ends with a colon:");
});

test("the answer is one line per statistic", () => {
  const lines = answerLines(textStatistics("alpha beta alpha."));
  assert.equal(lines.length, 7);
  assert.ok(lines.every((l) => l.endsWith("\n")));
  assert.equal(lines[1], "- words: 3\n");
  assert.equal(lines[6], "- most frequent words: alpha (2), beta (1)\n");
});
