import {
  BitbucketEmail,
  normalizeUuid,
  selectPrimaryConfirmedEmail,
  toBitbucketEmail,
  toBitbucketProfile,
} from './profile';

const user = {
  type: 'user',
  uuid: '{768f8c62-7f2a-4914-bf33-3f412fc1d3a4}',
  account_id: '5c65cab48bcc9e016aeece31',
  nickname: 'Ilka',
  display_name: 'Ilka Guigova',
  username: 'iguigova',
  links: {
    avatar: { href: 'https://avatars.example/ilka/128' },
    html: { href: 'https://bitbucket.org/%7B768f8c62%7D/' },
  },
};

const email = (
  address: string,
  isPrimary: boolean,
  isConfirmed: boolean,
): BitbucketEmail => ({ email: address, isPrimary, isConfirmed });

describe('selectPrimaryConfirmedEmail', () => {
  it.each([
    [[email('a@x', true, true)], 'a@x'],
    [[email('a@x', false, true), email('b@x', true, true)], 'b@x'],
    [[email('a@x', true, false)], undefined],
    [[email('a@x', true, false), email('b@x', false, true)], undefined],
    [[email('a@x', false, false)], undefined],
    [[], undefined],
  ])('%j → %s', (emails, expected) => {
    expect(selectPrimaryConfirmedEmail(emails)).toBe(expected);
  });
});

describe('toBitbucketEmail', () => {
  it('maps an item and treats missing flags as false', () => {
    expect(
      toBitbucketEmail({ type: 'email', email: 'a@x', is_primary: true }),
    ).toEqual({ email: 'a@x', isPrimary: true, isConfirmed: false });
    expect(toBitbucketEmail({ type: 'email' })).toBeUndefined();
    expect(toBitbucketEmail(null)).toBeUndefined();
  });
});

describe('toBitbucketProfile', () => {
  it('maps the user and the primary confirmed email', () => {
    const emails = [email('old@x', false, true), email('ilka@x', true, true)];
    expect(toBitbucketProfile(user, emails)).toEqual({
      uuid: '{768f8c62-7f2a-4914-bf33-3f412fc1d3a4}',
      accountId: '5c65cab48bcc9e016aeece31',
      nickname: 'Ilka',
      username: 'iguigova',
      displayName: 'Ilka Guigova',
      avatarUrl: 'https://avatars.example/ilka/128',
      profileUrl: 'https://bitbucket.org/%7B768f8c62%7D/',
      email: 'ilka@x',
      emails,
    });
  });

  it('keeps going without username, links or display name', () => {
    const { username, links, display_name, ...bare } = user;
    expect(toBitbucketProfile(bare, [])).toEqual({
      uuid: user.uuid,
      accountId: user.account_id,
      nickname: 'Ilka',
      username: undefined,
      displayName: 'Ilka',
      avatarUrl: undefined,
      profileUrl: undefined,
      email: undefined,
      emails: [],
    });
  });

  it('refuses an answer without identity', () => {
    expect(() => toBitbucketProfile({ ...user, uuid: undefined }, [])).toThrow(
      "Bitbucket's answer to GET /2.0/user lacks 'uuid'; cannot identify the user. Try again later.",
    );
    expect(() => toBitbucketProfile({}, [])).toThrow(
      "lacks 'uuid' and 'account_id'",
    );
  });
});

describe('normalizeUuid', () => {
  it.each([
    '{768F8C62-7F2A-4914-BF33-3F412FC1D3A4}',
    '768f8c62-7f2a-4914-bf33-3f412fc1d3a4',
    ' {768f8c62-7f2a-4914-bf33-3f412fc1d3a4} ',
  ])('%s', raw => {
    expect(normalizeUuid(raw)).toBe('768f8c62-7f2a-4914-bf33-3f412fc1d3a4');
  });
});
