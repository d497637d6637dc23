/*
 * Load: 500 distinct Bitbucket users sign in at the same time, each in their
 * own browser (cookie jar), against one backend. Every sign-in succeeds with
 * its own identity, token and session. The 10,000 sequential sign-ins with
 * the memory check run outside Jest: hardening/soak.ts.
 */
import {
  entitiesFor,
  HardeningWorld,
  seedUsers,
  startHardeningWorld,
  tokenClaims,
} from './__testUtils__/world';

const USERS = 500;

describe('load', () => {
  let world: HardeningWorld;
  const users = seedUsers(USERS, 'load');
  beforeAll(async () => {
    world = await startHardeningWorld({
      users,
      entities: entitiesFor(users),
    });
  });
  afterAll(() => world?.stop());

  it(`${USERS} concurrent sign-ins of ${USERS} distinct users: ${USERS} successes, each with its own identity`, async () => {
    const started = Date.now();
    const outcomes = await Promise.all(
      users.map(async u => {
        const agent = world.newAgent();
        const outcome = await world.signIn(u.uuid, { agent });
        return { user: u, agent, ...outcome };
      }),
    );
    const seconds = (Date.now() - started) / 1000;

    const failures = outcomes.filter(o => !o.message.response);
    expect(failures.map(f => f.message.error)).toEqual([]);
    for (const { user, message } of outcomes) {
      const ref = `user:default/${user.nickname}`;
      const { identity, token } = message.response.backstageIdentity;
      expect(identity.userEntityRef).toBe(ref);
      expect(identity.ownershipEntityRefs).toEqual([ref]);
      expect(tokenClaims(token).sub).toBe(ref);
      expect(message.response.profile.email).toBe(
        `${user.nickname}@example.com`,
      );
    }
    const distinct = (values: unknown[]) => new Set(values).size;
    expect(
      distinct(outcomes.map(o => o.message.response.backstageIdentity.token)),
    ).toBe(USERS);
    expect(
      distinct(outcomes.map(o => o.message.response.providerInfo.accessToken)),
    ).toBe(USERS);
    expect(distinct(outcomes.map(o => o.refreshToken))).toBe(USERS);

    // each session refreshes to its own user
    const sample = outcomes.filter((_, i) => i % 25 === 0);
    const refreshed = await Promise.all(
      sample.map(o => world.refresh(o.agent)),
    );
    refreshed.forEach((res, i) => {
      expect(res.status).toBe(200);
      expect(res.body.backstageIdentity.identity.userEntityRef).toBe(
        `user:default/${sample[i].user.nickname}`,
      );
    });

    // eslint-disable-next-line no-console
    console.log(
      `${USERS} concurrent sign-ins in ${seconds.toFixed(
        1,
      )} s; slowest ${Math.max(...outcomes.map(o => o.ms))} ms`,
    );
  }, 120_000);
});
