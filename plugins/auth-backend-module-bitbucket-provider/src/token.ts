import { ServiceUnavailableError } from '@backstage/errors';
import { Deadline } from './deadline';
import {
  deadlineError,
  invalidJsonError,
  tokenError,
  transportError,
} from './errors';
import { HttpAnswer, httpRequest } from './http';

/** A successful answer of Bitbucket's token endpoint. */
export interface BitbucketTokenResponse {
  accessToken: string;
  tokenType: string;
  /** Space-separated granted scopes. */
  scope: string;
  expiresInSeconds?: number;
  /** Rotated on every refresh since CHANGE-3052: always keep the newest. */
  refreshToken?: string;
}

/** Options of {@link BitbucketTokenClient}. */
export interface BitbucketTokenClientOptions {
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  timeoutMs: number;
}

/**
 * Calls `POST <baseUrl>/site/oauth2/access_token`
 * (https://developer.atlassian.com/cloud/bitbucket/oauth-2/): a form-encoded
 * body and the consumer's key and secret as HTTP Basic, as Bitbucket
 * documents. Unlike node-oauth it has a timeout, reads both `scope` (since
 * CHANGE-3052) and `scopes` (before), and turns RFC 6749 errors into
 * messages that say what to fix.
 */
export class BitbucketTokenClient {
  readonly #options: BitbucketTokenClientOptions;

  constructor(options: BitbucketTokenClientOptions) {
    this.#options = options;
  }

  /** The authorization-code grant (RFC 6749 section 4.1.3). */
  exchangeCode(
    code: string,
    redirectUri: string | undefined,
    deadline?: Deadline,
  ): Promise<BitbucketTokenResponse> {
    const form: Record<string, string> = {
      grant_type: 'authorization_code',
      code,
    };
    if (redirectUri) form.redirect_uri = redirectUri;
    return this.#request('authorization_code', form, deadline);
  }

  /** The refresh-token grant (RFC 6749 section 6). */
  refresh(
    refreshToken: string,
    scope: string | undefined,
    deadline?: Deadline,
  ): Promise<BitbucketTokenResponse> {
    const form: Record<string, string> = {
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
    };
    if (scope) form.scope = scope;
    return this.#request('refresh_token', form, deadline);
  }

  async #request(
    grant: 'authorization_code' | 'refresh_token',
    form: Record<string, string>,
    deadline: Deadline | undefined,
  ): Promise<BitbucketTokenResponse> {
    const { tokenUrl, clientId, clientSecret, timeoutMs } = this.#options;
    const endpoint = `POST ${new URL(tokenUrl).pathname}`;
    if (deadline?.expired()) throw deadlineError(endpoint, deadline.totalMs);
    const callTimeoutMs = deadline?.callTimeout(timeoutMs) ?? timeoutMs;
    let res: HttpAnswer;
    try {
      res = await httpRequest(tokenUrl, {
        method: 'POST',
        headers: {
          Authorization: `Basic ${Buffer.from(
            `${clientId}:${clientSecret}`,
          ).toString('base64')}`,
          'Content-Type': 'application/x-www-form-urlencoded',
          Accept: 'application/json',
        },
        body: new URLSearchParams(form).toString(),
        timeoutMs: callTimeoutMs,
      });
    } catch (error) {
      throw transportError(
        endpoint,
        new URL(tokenUrl).origin,
        error,
        timeoutMs,
        callTimeoutMs < timeoutMs ? deadline : undefined,
      );
    }
    if (!res.ok) {
      throw tokenError(grant, res.status, res.text);
    }
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(res.text);
    } catch {
      throw invalidJsonError(endpoint);
    }
    const accessToken = json.access_token;
    if (typeof accessToken !== 'string' || accessToken === '') {
      throw new ServiceUnavailableError(
        `Bitbucket's token endpoint answered without an access_token. Try again later.`,
      );
    }
    const scope = json.scope ?? json.scopes;
    const expiresIn = Number(json.expires_in);
    return {
      accessToken,
      tokenType:
        typeof json.token_type === 'string' ? json.token_type : 'bearer',
      scope: typeof scope === 'string' ? scope : '',
      expiresInSeconds: Number.isFinite(expiresIn) ? expiresIn : undefined,
      refreshToken:
        typeof json.refresh_token === 'string' && json.refresh_token
          ? json.refresh_token
          : undefined,
    };
  }
}
