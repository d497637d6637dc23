/** What kind of secret a value is, for the report of a leak. */
export type SecretKind =
  | 'client secret'
  | 'authorization code'
  | 'access token'
  | 'refresh token'
  | 'backstage token'
  /** Any token the emulator issued, also to sign-ins that failed later. */
  | 'issued token'
  /** The consumer's HTTP Basic credentials, `base64(key:secret)`. */
  | 'client credentials';

/** A secret found where it must not be. */
export interface Leak {
  kind: SecretKind;
  where: string;
  /** The first characters only, so that a failing test does not leak it further. */
  prefix: string;
}

/**
 * Every secret a test saw being issued: the consumer secret, the codes in
 * Bitbucket's redirects, the access tokens of the web messages, the refresh
 * tokens of the cookies and the Backstage tokens. The scans look for each
 * of them, verbatim and URL-encoded, in every log line and record.
 */
export class SecretLedger {
  readonly #secrets = new Map<string, SecretKind>();

  add(kind: SecretKind, value: unknown): void {
    // short values would match by chance; none of the real ones is short
    if (
      typeof value === 'string' &&
      value.length >= 8 &&
      !this.#secrets.has(value)
    ) {
      this.#secrets.set(value, kind);
    }
  }

  count(kind?: SecretKind): number {
    return [...this.#secrets.values()].filter(k => !kind || k === kind).length;
  }

  /** The secrets that occur in `text`, as they are or URL-encoded. */
  scan(text: string, where: string): Leak[] {
    const leaks: Leak[] = [];
    for (const [value, kind] of this.#secrets) {
      if (
        text.includes(value) ||
        text.includes(encodeURIComponent(value)) ||
        text.includes(new URLSearchParams({ v: value }).toString().slice(2))
      ) {
        leaks.push({ kind, where, prefix: `${value.slice(0, 4)}…` });
      }
    }
    return leaks;
  }
}

/** A log line's full text: message and fields, errors with their stack and cause. */
export function logLineText(line: {
  level: string;
  message: string;
  meta?: unknown;
}): string {
  return `${line.level} ${line.message} ${stringifyDeep(line.meta)}`;
}

/** JSON of any value, with Error objects spelled out (JSON.stringify drops them). */
export function stringifyDeep(value: unknown): string {
  const seen = new WeakSet<object>();
  return (
    JSON.stringify(value, (_key, v) => {
      if (v instanceof Error) {
        return {
          name: v.name,
          message: v.message,
          stack: v.stack,
          cause: (v as any).cause,
          ...(v as any),
        };
      }
      if (typeof v === 'object' && v !== null) {
        if (seen.has(v)) return '[circular]';
        seen.add(v);
      }
      return v;
    }) ?? ''
  );
}
