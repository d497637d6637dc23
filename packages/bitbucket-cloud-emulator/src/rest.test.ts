import { BitbucketCloudEmulator, startEmulator } from './server';
import { DEMO_USERS, getApi, httpRequest, signIn } from './test-helpers';

const CHANGE_2770_BODY =
  '{"type":"error","error":{"message":"CHANGE-2770 - Functionality has been deprecated","detail":"Please read the changelog entry for more details.","data":{"announcement_url":"https://developer.atlassian.com/cloud/bitbucket/changelog#CHANGE-2770"}},"data":{"announcement_url":"https://developer.atlassian.com/cloud/bitbucket/changelog#CHANGE-2770"}}';

describe('REST API', () => {
  let emulator: BitbucketCloudEmulator;
  let janeToken: string;
  beforeEach(async () => {
    emulator = await startEmulator();
    janeToken = (await signIn(emulator, DEMO_USERS.jane)).access_token;
  });
  afterEach(() => emulator.close());

  describe('authentication', () => {
    it('accepts the token in the Authorization: Bearer header', async () => {
      const res = await getApi(emulator, '/2.0/user', janeToken);
      expect(res.status).toBe(200);
    });

    it('ignores an access_token query parameter (CHANGE-3052)', async () => {
      const res = await getApi(emulator, `/2.0/user?access_token=${janeToken}`);
      expect(res.status).toBe(401);
      expect(res.json()).toEqual({
        type: 'error',
        error: {
          message:
            'Authentication required: send an access token in the Authorization: Bearer header.',
        },
      });
    });

    it('answers 401 for a token it never issued', async () => {
      const res = await getApi(emulator, '/2.0/user', 'not-a-token');
      expect(res.status).toBe(401);
      expect(res.json()).toEqual({
        type: 'error',
        error: { message: 'Invalid access token.' },
      });
    });

    it('answers 401 "Access token expired." after expireAccessTokens()', async () => {
      emulator.expireAccessTokens();
      const res = await getApi(emulator, '/2.0/user', janeToken);
      expect(res.status).toBe(401);
      expect(res.text).toBe(
        '{"type":"error","error":{"message":"Access token expired."}}',
      );
      const fresh = await signIn(emulator, DEMO_USERS.jane);
      expect(
        (await getApi(emulator, '/2.0/user', fresh.access_token)).status,
      ).toBe(200);
    });

    it('expires access tokens after accessTokenTtlSeconds', async () => {
      const realNow = Date.now();
      const spy = jest
        .spyOn(Date, 'now')
        .mockReturnValue(realNow + 7200 * 1000 + 1000);
      try {
        const res = await getApi(emulator, '/2.0/user', janeToken);
        expect(res.status).toBe(401);
        expect(res.json().error.message).toBe('Access token expired.');
      } finally {
        spy.mockRestore();
      }
    });

    it('answers 403 with required and granted scopes when a scope is missing', async () => {
      const teamOnly = (await signIn(emulator, DEMO_USERS.jane, 'team'))
        .access_token;
      const res = await getApi(emulator, '/2.0/user', teamOnly);
      expect(res.status).toBe(403);
      expect(res.text).toBe(
        '{"type":"error","error":{"message":"Your credentials lack one or more required privilege scopes.","detail":{"required":["account"],"granted":["team"]}}}',
      );
      const emails = await getApi(emulator, '/2.0/user/emails', teamOnly);
      expect(emails.json().error.detail).toEqual({
        required: ['email'],
        granted: ['team'],
      });
      const accountOnly = (await signIn(emulator, DEMO_USERS.jane, 'account'))
        .access_token;
      const workspaces = await getApi(
        emulator,
        '/2.0/user/workspaces',
        accountOnly,
      );
      expect(workspaces.status).toBe(403);
      expect(workspaces.json().error.detail).toEqual({
        required: ['team'],
        granted: ['account'],
      });
    });
  });

  describe('GET /2.0/user', () => {
    it('answers the user object, with username when seeded', async () => {
      const res = await getApi(emulator, '/2.0/user', janeToken);
      expect(res.headers['content-type']).toBe(
        'application/json; charset=utf-8',
      );
      const body = res.json();
      expect(body).toEqual({
        type: 'user',
        uuid: DEMO_USERS.jane,
        account_id: '557058:6d2b9f4e-1a3c-4b8e-9f70-2e5a1c8d4b36',
        nickname: 'jdoe',
        display_name: 'Jane Doe',
        username: 'jdoe',
        account_status: 'active',
        has_2fa_enabled: null,
        is_staff: false,
        created_on: expect.stringMatching(
          /^20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$/,
        ),
        links: {
          self: {
            href: `${emulator.url}/2.0/users/%7B3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15%7D`,
          },
          html: {
            href: `${emulator.url}/%7B3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15%7D/`,
          },
          avatar: {
            href: `${emulator.url}/account/3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15/avatar.svg`,
          },
        },
      });
    });

    it('omits username when the user has none', async () => {
      const bob = (await signIn(emulator, DEMO_USERS.bob)).access_token;
      const body = (await getApi(emulator, '/2.0/user', bob)).json();
      expect(body.display_name).toBe('Bob Builder');
      expect('username' in body).toBe(false);
    });

    it('serves the avatar as an SVG with the initials, and the profile page', async () => {
      const body = (await getApi(emulator, '/2.0/user', janeToken)).json();
      const avatar = await httpRequest(body.links.avatar.href);
      expect(avatar.status).toBe(200);
      expect(avatar.headers['content-type']).toBe('image/svg+xml');
      expect(avatar.text).toMatch(
        /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/,
      );
      expect(avatar.text).toContain('>JD</text>');
      const profile = await httpRequest(body.links.html.href);
      expect(profile.status).toBe(200);
      expect(profile.text).toContain('Jane Doe');
    });

    it('reflects updateUser() and answers 401 once the user is removed', async () => {
      emulator.updateUser(DEMO_USERS.jane, { displayName: 'Jane Q. Doe' });
      expect(
        (await getApi(emulator, '/2.0/user', janeToken)).json().display_name,
      ).toBe('Jane Q. Doe');
      emulator.removeUser(DEMO_USERS.jane);
      expect((await getApi(emulator, '/2.0/user', janeToken)).status).toBe(401);
    });
  });

  describe('GET /2.0/user/emails', () => {
    it('answers one page with every address, confirmed or not', async () => {
      const res = await getApi(emulator, '/2.0/user/emails', janeToken);
      expect(res.json()).toEqual({
        pagelen: 10,
        page: 1,
        size: 2,
        values: [
          {
            type: 'email',
            email: 'jane.doe@example.com',
            is_primary: true,
            is_confirmed: true,
            links: {
              self: {
                href: `${emulator.url}/2.0/user/emails/jane.doe@example.com`,
              },
            },
          },
          {
            type: 'email',
            email: 'jane@personal.example',
            is_primary: false,
            is_confirmed: true,
            links: {
              self: {
                href: `${emulator.url}/2.0/user/emails/jane@personal.example`,
              },
            },
          },
        ],
      });
    });

    it('paginates over several pages following next', async () => {
      emulator.updateUser(DEMO_USERS.jane, {
        emails: Array.from({ length: 5 }, (_, i) => ({
          email: `jane${i}@example.com`,
          primary: i === 3,
          confirmed: i !== 1,
        })),
      });
      const seen: string[] = [];
      const pages: number[] = [];
      const previous: (string | undefined)[] = [];
      let next:
        | string
        | undefined = `${emulator.apiBaseUrl}/user/emails?pagelen=2`;
      while (next) {
        expect(next.startsWith(`${emulator.url}/2.0/user/emails?`)).toBe(true);
        const res = await httpRequest(next, {
          headers: { authorization: `Bearer ${janeToken}` },
        });
        const body = res.json();
        expect(body.pagelen).toBe(2);
        expect(body.size).toBe(5);
        pages.push(body.page);
        seen.push(...body.values.map((v: { email: string }) => v.email));
        previous.push(body.previous);
        next = body.next;
      }
      expect(pages).toEqual([1, 2, 3]);
      expect(previous).toEqual([
        undefined,
        `${emulator.url}/2.0/user/emails?pagelen=2&page=1`,
        `${emulator.url}/2.0/user/emails?pagelen=2&page=2`,
      ]);
      expect(seen).toEqual([0, 1, 2, 3, 4].map(i => `jane${i}@example.com`));
    });

    it('uses the pagelen option as the default page size and caps pagelen at 100', async () => {
      await emulator.close();
      emulator = await startEmulator({ pagelen: 1 });
      janeToken = (await signIn(emulator, DEMO_USERS.jane)).access_token;
      const first = (
        await getApi(emulator, '/2.0/user/emails', janeToken)
      ).json();
      expect(first.pagelen).toBe(1);
      expect(first.values).toHaveLength(1);
      expect(first.next).toBe(`${emulator.url}/2.0/user/emails?page=2`);
      const capped = (
        await getApi(emulator, '/2.0/user/emails?pagelen=500', janeToken)
      ).json();
      expect(capped.pagelen).toBe(100);
      expect(capped.next).toBeUndefined();
    });

    it('rejects a bad page and a page past the end', async () => {
      expect(
        (await getApi(emulator, '/2.0/user/emails?page=0', janeToken)).status,
      ).toBe(400);
      expect(
        (await getApi(emulator, '/2.0/user/emails?pagelen=x', janeToken))
          .status,
      ).toBe(400);
      const past = await getApi(emulator, '/2.0/user/emails?page=9', janeToken);
      expect(past.status).toBe(404);
      expect(past.json()).toEqual({
        type: 'error',
        error: { message: 'Invalid page' },
      });
    });

    it('answers one address by email', async () => {
      const res = await getApi(
        emulator,
        '/2.0/user/emails/jane@personal.example',
        janeToken,
      );
      expect(res.json().is_primary).toBe(false);
      expect(
        (
          await getApi(
            emulator,
            '/2.0/user/emails/nobody@example.com',
            janeToken,
          )
        ).status,
      ).toBe(404);
    });
  });

  describe('workspaces', () => {
    it('lists workspace_access items with administrator for owners', async () => {
      const res = await getApi(emulator, '/2.0/user/workspaces', janeToken);
      expect(res.json()).toEqual({
        pagelen: 10,
        page: 1,
        size: 2,
        values: [
          {
            type: 'workspace_access',
            administrator: true,
            workspace: {
              type: 'workspace_base',
              uuid: '{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}',
              slug: 'acme',
              links: { self: { href: `${emulator.url}/2.0/workspaces/acme` } },
            },
          },
          {
            type: 'workspace_access',
            administrator: false,
            workspace: {
              type: 'workspace_base',
              uuid: '{5c9d2e7b-1f4a-4c63-9e08-b3a6d1f7c245}',
              slug: 'platform',
              links: {
                self: { href: `${emulator.url}/2.0/workspaces/platform` },
              },
            },
          },
        ],
      });
    });

    it('paginates workspaces', async () => {
      const first = (
        await getApi(emulator, '/2.0/user/workspaces?pagelen=1', janeToken)
      ).json();
      expect(first.values.map((v: any) => v.workspace.slug)).toEqual(['acme']);
      expect(first.next).toBe(
        `${emulator.url}/2.0/user/workspaces?pagelen=1&page=2`,
      );
      const second = (
        await httpRequest(first.next, {
          headers: { authorization: `Bearer ${janeToken}` },
        })
      ).json();
      expect(second.values.map((v: any) => v.workspace.slug)).toEqual([
        'platform',
      ]);
      expect(second.next).toBeUndefined();
    });

    it('answers an empty page for a user without workspaces', async () => {
      const eve = (await signIn(emulator, DEMO_USERS.eve)).access_token;
      expect(
        (await getApi(emulator, '/2.0/user/workspaces', eve)).json(),
      ).toEqual({
        pagelen: 10,
        page: 1,
        size: 0,
        values: [],
      });
    });

    it('answers the permission in a workspace, and 404 when not a member', async () => {
      const owner = await getApi(
        emulator,
        '/2.0/user/workspaces/acme/permission',
        janeToken,
      );
      expect(owner.json()).toEqual({
        type: 'workspace_membership',
        permission: 'owner',
        user: {
          type: 'user',
          uuid: '{3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15}',
          account_id: '557058:6d2b9f4e-1a3c-4b8e-9f70-2e5a1c8d4b36',
          nickname: 'jdoe',
          display_name: 'Jane Doe',
        },
        workspace: {
          type: 'workspace',
          uuid: '{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}',
          slug: 'acme',
          name: 'ACME Corp',
        },
      });
      const member = await getApi(
        emulator,
        '/2.0/user/workspaces/platform/permission',
        janeToken,
      );
      expect(member.json().permission).toBe('member');
      // {workspace} is the slug or the braced uuid, in any letter case
      const byUuid = await getApi(
        emulator,
        `/2.0/user/workspaces/${encodeURIComponent(
          '{5C9D2E7B-1F4A-4C63-9E08-B3A6D1F7C245}',
        )}/permission`,
        janeToken,
      );
      expect(byUuid.json().workspace.slug).toBe('platform');
      const carol = (await signIn(emulator, DEMO_USERS.carol)).access_token;
      const collaborator = await getApi(
        emulator,
        '/2.0/user/workspaces/partners/permission',
        carol,
      );
      expect(collaborator.json().permission).toBe('collaborator');

      const outsider = await getApi(
        emulator,
        '/2.0/user/workspaces/partners/permission',
        janeToken,
      );
      expect(outsider.status).toBe(404);
      expect(outsider.json()).toEqual({
        type: 'error',
        error: {
          message:
            'You are not a member of the workspace "partners", or it does not exist.',
        },
      });
    });
  });

  describe('removed and unknown endpoints', () => {
    it.each([
      '/2.0/workspaces',
      '/2.0/user/permissions/workspaces',
      '/2.0/user/permissions/repositories',
      '/2.0/repositories',
    ])('answers 410 with the CHANGE-2770 body on %s', async path => {
      for (const token of [janeToken, undefined]) {
        const res = await getApi(emulator, path, token);
        expect(res.status).toBe(410);
        expect(res.text).toBe(CHANGE_2770_BODY);
      }
    });

    it('answers 404 with the Bitbucket error body for an unknown path', async () => {
      const res = await getApi(emulator, '/2.0/teams', janeToken);
      expect(res.status).toBe(404);
      expect(res.json()).toEqual({
        type: 'error',
        error: { message: 'Resource not found' },
      });
    });
  });
});
