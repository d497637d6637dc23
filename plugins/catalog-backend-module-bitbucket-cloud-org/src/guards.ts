import type { WorkspaceMembers } from './client';
import type { ProviderSettings } from './config';
import { canonicalUuid } from './contract';
import { WorkspaceListingError } from './errors';

/**
 * Refuses a listing that lost more members than `memberDrop` allows against
 * the last applied listing of the same workspace: more than `maxShare` of
 * them, and at least `minCount`. A real departure of many people is
 * accepted by raising `memberDrop.maxShare` (to 1 for any drop) for one run.
 */
export function checkMemberDrop(
  settings: Pick<ProviderSettings, 'path' | 'memberDrop'>,
  listing: WorkspaceMembers,
  lastApplied: { uuids: string[]; listedAt: string } | undefined,
): void {
  if (!lastApplied || lastApplied.uuids.length === 0) return;
  const now = new Set(listing.members.map(m => canonicalUuid(m.uuid)));
  const gone = lastApplied.uuids.filter(uuid => !now.has(uuid)).length;
  const { maxShare, minCount } = settings.memberDrop;
  const share = gone / lastApplied.uuids.length;
  if (gone >= minCount && share > maxShare) {
    throw new WorkspaceListingError(
      `the listing of workspace '${
        listing.workspace.slug
      }' lacks ${gone} of the ${
        lastApplied.uuids.length
      } members of the last applied listing (${percent(share)}, listed at ${
        lastApplied.listedAt
      }), more than '${settings.path}.memberDrop' allows (maxShare ${percent(
        maxShare,
      )}, minCount ${minCount}), so it is not applied. If so many people really left, accept it by raising '${
        settings.path
      }.memberDrop.maxShare' (1 accepts any drop) for one run, then set it back.`,
    );
  }
}

function percent(share: number): string {
  return `${Math.round(share * 1000) / 10} %`;
}
