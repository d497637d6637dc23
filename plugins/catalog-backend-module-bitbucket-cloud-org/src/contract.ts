// What the org import writes for the Bitbucket sign-in to trust. The sign-in
// module (plugins/auth-backend-module-bitbucket-provider, its catalog
// membership source) declares the same names on its own side: each package
// is published on its own, so neither imports the other. Change both
// together, or neither.

/**
 * The location type of every entity the provider emits, in both
 * `backstage.io/managed-by-location` and
 * `backstage.io/managed-by-origin-location`: `bitbucket-cloud-org:<providerId>`.
 * No catalog processor reads this type, and the catalog overwrites both
 * annotations on every entity read from a location (a YAML file, a URL), so
 * no other source can carry it.
 */
export const PROVENANCE_LOCATION_TYPE = 'bitbucket-cloud-org';

/** `bitbucket-cloud-org:<providerId>` */
export function provenanceOf(providerId: string): string {
  return `${PROVENANCE_LOCATION_TYPE}:${providerId}`;
}

/** ISO-8601 UTC time of the Bitbucket listing a workspace Group's members come from. */
export const MEMBERS_LISTED_AT_ANNOTATION = 'bitbucket.org/members-listed-at';

/**
 * The workspace's members (owners and members; collaborators excluded) as
 * braced, lower-case uuids, sorted, joined by `,` with no spaces. It lists
 * members for whom the import wrote no User too.
 */
export const MEMBER_UUIDS_ANNOTATION = 'bitbucket.org/member-uuids';

/** Where the Bitbucket page of an entity goes now that its location is the provenance. */
export const VIEW_URL_ANNOTATION = 'backstage.io/view-url';

const UUID =
  /^\{?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\}?$/i;

/** `{3f1c…}` for `3F1C…`, `{3F1C…}` or `{3f1c…}`; undefined for anything but a uuid. */
export function canonicalUuid(value: string): string | undefined {
  const match = UUID.exec(value.trim());
  return match ? `{${match[1].toLowerCase()}}` : undefined;
}

/** The value of {@link MEMBER_UUIDS_ANNOTATION} for these account uuids. */
export function memberUuidsValue(uuids: Iterable<string>): string {
  const canonical = new Set<string>();
  for (const uuid of uuids) {
    const c = canonicalUuid(uuid);
    if (c) canonical.add(c);
  }
  return [...canonical].sort().join(',');
}

/** The uuids of a {@link MEMBER_UUIDS_ANNOTATION} value; none for an empty one. */
export function parseMemberUuids(value: string | undefined): string[] {
  if (!value) return [];
  return value
    .split(',')
    .map(v => canonicalUuid(v))
    .filter((v): v is string => v !== undefined);
}
