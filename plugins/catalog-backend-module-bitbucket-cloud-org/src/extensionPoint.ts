import { createExtensionPoint } from '@backstage/backend-plugin-api';
import type { OrgTransformers } from './org';
import {
  BitbucketCloudGroupTransformer,
  BitbucketCloudUserTransformer,
  defaultBitbucketCloudGroupTransformer,
  defaultBitbucketCloudUserTransformer,
} from './transformers';

/**
 * What {@link bitbucketCloudOrgEntityProviderTransformsExtensionPoint}
 * offers: replace how members and workspaces become entities, for every
 * provider of the module.
 *
 * @public
 */
export interface BitbucketCloudOrgEntityProviderTransformsExtensionPoint {
  /** Replaces {@link defaultBitbucketCloudUserTransformer}; once only. */
  setUserTransformer(transformer: BitbucketCloudUserTransformer): void;
  /** Replaces {@link defaultBitbucketCloudGroupTransformer}; once only. */
  setGroupTransformer(transformer: BitbucketCloudGroupTransformer): void;
}

/**
 * The extension point through which another catalog module sets the user
 * and group transformers of the Bitbucket Cloud org provider.
 *
 * @public
 */
export const bitbucketCloudOrgEntityProviderTransformsExtensionPoint =
  createExtensionPoint<BitbucketCloudOrgEntityProviderTransformsExtensionPoint>(
    { id: 'catalog.bitbucketCloudOrgEntityProvider.transforms' },
  );

/**
 * The transformers set through the extension point, the defaults otherwise.
 * Setting one twice is an error: two modules would silently fight over it.
 */
export class TransformerSlots
  implements BitbucketCloudOrgEntityProviderTransformsExtensionPoint
{
  #user?: BitbucketCloudUserTransformer;
  #group?: BitbucketCloudGroupTransformer;

  setUserTransformer(transformer: BitbucketCloudUserTransformer): void {
    if (this.#user) {
      throw new Error(
        'The Bitbucket Cloud org user transformer may only be set once',
      );
    }
    this.#user = transformer;
  }

  setGroupTransformer(transformer: BitbucketCloudGroupTransformer): void {
    if (this.#group) {
      throw new Error(
        'The Bitbucket Cloud org group transformer may only be set once',
      );
    }
    this.#group = transformer;
  }

  /** The transformers to run, read once every module has registered. */
  get(): OrgTransformers {
    return {
      user: this.#user ?? defaultBitbucketCloudUserTransformer,
      group: this.#group ?? defaultBitbucketCloudGroupTransformer,
    };
  }
}
