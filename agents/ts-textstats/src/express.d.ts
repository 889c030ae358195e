// The few express 5 types this agent and @a2a-js/sdk's express handlers use. express ships no
// types and @types/express is not among the project's pinned packages (package.json), so
// they are declared here, as much as is used and no more.
declare module "express" {
  import type { IncomingMessage, Server, ServerResponse } from "node:http";

  export interface Request extends IncomingMessage {
    path: string;
  }
  export interface Response extends ServerResponse {
    status(code: number): Response;
    json(body: unknown): Response;
    send(body: unknown): Response;
  }
  export type NextFunction = (error?: unknown) => void;
  export type RequestHandler = (req: Request, res: Response, next: NextFunction) => unknown;

  export interface Application extends RequestHandler {
    use(path: string, ...handlers: RequestHandler[]): Application;
    use(...handlers: RequestHandler[]): Application;
    get(path: string, ...handlers: RequestHandler[]): Application;
    disable(setting: string): Application;
    listen(port: number, host: string, callback: (error?: Error) => void): Server;
  }

  export default function express(): Application;
}
