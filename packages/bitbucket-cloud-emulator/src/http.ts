import type {
  IncomingMessage,
  OutgoingHttpHeaders,
  ServerResponse,
} from 'node:http';

/**
 * One request being answered. Every answer goes through {@link send}, so the
 * call record and the `malformedJson`/`omitFields`/`setFields` faults apply in
 * one place.
 */
export interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** Origin the client used to reach the emulator, for absolute links. */
  origin: string;
  /** The raw request body ('' for none). */
  body: string;
  /** Answer 200 with a truncated JSON body instead of the real one. */
  malformedJson?: boolean;
  /** Delete these top-level fields from JSON bodies. */
  omitFields?: string[];
  /** Set these top-level fields of JSON bodies (after `omitFields`). */
  setFields?: Record<string, unknown>;
  /** Called once with the status just before the answer is written. */
  onAnswer(status: number): void;
}

/** Writes a response, unless one was already written or the socket is gone. */
export function send(
  ex: Exchange,
  status: number,
  headers: OutgoingHttpHeaders,
  body: string,
): void {
  if (ex.res.headersSent || ex.res.destroyed) {
    return;
  }
  ex.onAnswer(status);
  ex.res.writeHead(status, {
    ...headers,
    'content-length': Buffer.byteLength(body),
  });
  ex.res.end(body);
}

/** Sends a JSON body, applying the `omitFields`, `setFields` and `malformedJson` faults. */
export function sendJson(
  ex: Exchange,
  status: number,
  value: unknown,
  headers: OutgoingHttpHeaders = {},
): void {
  let body = value;
  if (ex.omitFields && isPlainObject(value)) {
    const copy: Record<string, unknown> = { ...value };
    for (const field of ex.omitFields) {
      delete copy[field];
    }
    body = copy;
  }
  if (ex.setFields && isPlainObject(body)) {
    body = { ...body, ...ex.setFields };
  }
  let text = JSON.stringify(body);
  let answerStatus = status;
  if (ex.malformedJson) {
    answerStatus = 200;
    text = text.slice(0, Math.max(1, Math.floor(text.length / 2)));
  }
  send(
    ex,
    answerStatus,
    { 'content-type': 'application/json; charset=utf-8', ...headers },
    text,
  );
}

/** Sends an HTML page. */
export function sendHtml(ex: Exchange, status: number, html: string): void {
  send(
    ex,
    status,
    {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'x-frame-options': 'DENY',
    },
    html,
  );
}

/** Sends a 302 redirect. */
export function redirect(ex: Exchange, location: string): void {
  send(ex, 302, { location, 'cache-control': 'no-store' }, '');
}

/** Sends plain text. */
export function sendText(
  ex: Exchange,
  status: number,
  text: string,
  contentType = 'text/plain; charset=utf-8',
): void {
  send(ex, status, { 'content-type': contentType }, text);
}

/** Reads the whole request body as UTF-8, up to `limitBytes`. */
export async function readBody(
  req: IncomingMessage,
  limitBytes = 1024 * 1024,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limitBytes) {
      throw new Error(`Request body larger than ${limitBytes} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The media type of a Content-Type header, lower-cased and without parameters. */
export function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
