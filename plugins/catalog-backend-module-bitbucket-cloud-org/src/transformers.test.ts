import { mockServices } from '@backstage/backend-test-utils';
import {
  bitbucketCloudUserEntityName,
  BitbucketCloudMember,
  defaultBitbucketCloudGroupTransformer,
  defaultBitbucketCloudUserTransformer,
} from './transformers';

const ctx = { providerId: 'test', logger: mockServices.logger.mock() };

const ACME = {
  uuid: '{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}',
  slug: 'acme',
  name: 'ACME Corp',
};

const JANE: BitbucketCloudMember = {
  uuid: '{3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15}',
  accountId: '557058:6d2b9f4e-1a3c-4b8e-9f70-2e5a1c8d4b36',
  username: 'jdoe',
  nickname: 'jdoe',
  displayName: 'Jane Doe',
  avatarUrl: 'https://avatars.example/jane.png',
  workspaces: [ACME],
};

describe('bitbucketCloudUserEntityName', () => {
  it('is the uuid without braces, in lower case', () => {
    expect(
      bitbucketCloudUserEntityName('{3F1C2A8E-5B7D-4E29-9A61-0C4D8B2E7F15}'),
    ).toBe('3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15');
    expect(
      bitbucketCloudUserEntityName(' 3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15 '),
    ).toBe('3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15');
  });

  it('refuses anything but a uuid', () => {
    expect(() => bitbucketCloudUserEntityName('jdoe')).toThrow(
      "'jdoe' is not a Bitbucket account uuid such as '{3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15}'",
    );
    expect(() =>
      bitbucketCloudUserEntityName('{3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f1}'),
    ).toThrow(TypeError);
  });
});

describe('defaultBitbucketCloudUserTransformer', () => {
  it('makes a User annotated with the uuid, account id and username', async () => {
    expect(await defaultBitbucketCloudUserTransformer(JANE, ctx)).toEqual({
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'User',
      metadata: {
        name: '3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15',
        annotations: {
          'bitbucket.org/user-id': '{3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15}',
          'bitbucket.org/account-id':
            '557058:6d2b9f4e-1a3c-4b8e-9f70-2e5a1c8d4b36',
          'bitbucket.org/username': 'jdoe',
        },
      },
      spec: {
        profile: {
          displayName: 'Jane Doe',
          picture: 'https://avatars.example/jane.png',
        },
        memberOf: [],
      },
    });
  });

  it('keeps the name when the nickname changes', async () => {
    const before = await defaultBitbucketCloudUserTransformer(JANE, ctx);
    const after = await defaultBitbucketCloudUserTransformer(
      { ...JANE, nickname: 'jane-renamed', displayName: 'Jane Q. Doe' },
      ctx,
    );
    expect(after!.metadata.name).toBe(before!.metadata.name);
  });

  it('leaves out what Bitbucket did not send, and falls back to the nickname', async () => {
    const entity = await defaultBitbucketCloudUserTransformer(
      {
        uuid: '{8a4e6c21-9d3b-47f0-b512-6e9c0a7d3f48}',
        nickname: 'bob',
        workspaces: [ACME],
      },
      ctx,
    );
    expect(entity!.metadata.annotations).toEqual({
      'bitbucket.org/user-id': '{8a4e6c21-9d3b-47f0-b512-6e9c0a7d3f48}',
    });
    expect(entity!.spec).toEqual({
      profile: { displayName: 'bob' },
      memberOf: [],
    });
  });

  it('never sets an email: Bitbucket shows no one else’s', async () => {
    const entity = await defaultBitbucketCloudUserTransformer(JANE, ctx);
    expect(entity!.spec.profile).not.toHaveProperty('email');
  });
});

describe('defaultBitbucketCloudGroupTransformer', () => {
  it('makes a workspace Group named by its slug, annotated with slug and uuid', async () => {
    expect(
      await defaultBitbucketCloudGroupTransformer(
        { ...ACME, avatarUrl: 'https://avatars.example/acme.png' },
        ctx,
      ),
    ).toEqual({
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'Group',
      metadata: {
        name: 'acme',
        annotations: {
          'bitbucket.org/workspace-slug': 'acme',
          'bitbucket.org/workspace-uuid':
            '{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}',
        },
      },
      spec: {
        type: 'workspace',
        profile: {
          displayName: 'ACME Corp',
          picture: 'https://avatars.example/acme.png',
        },
        children: [],
      },
    });
  });

  it('names the group in lower case, the ref workspaceOwnership issues', async () => {
    const group = await defaultBitbucketCloudGroupTransformer(
      { uuid: ACME.uuid, slug: 'Acme-Team' },
      ctx,
    );
    expect(group!.metadata.name).toBe('acme-team');
    expect(group!.metadata.annotations!['bitbucket.org/workspace-slug']).toBe(
      'Acme-Team',
    );
    expect(group!.spec.profile).toEqual({});
  });
});
