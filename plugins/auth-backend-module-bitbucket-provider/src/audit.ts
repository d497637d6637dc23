/**
 * Details of a refusal that only the admin may read: which catalog User a
 * match hit, the whole allow-list. The message the browser shows names
 * neither (another person's entity, workspaces the user is not in); the
 * audit line `Bitbucket sign-in decision` carries them. Kept beside the
 * error, not on it, so that no serializer sends them to the browser.
 */
const details = new WeakMap<object, string>();

/** Returns `error` with `detail` for the audit line. */
export function withAuditDetail<E extends Error>(error: E, detail: string): E {
  details.set(error, detail);
  return error;
}

/** What the audit line says about `error`: its detail, else its message. */
export function auditReason(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  return details.get(error) ?? (error as Error).message;
}
