import { useCallback, useEffect, useState } from 'react';
import {
  Content,
  ContentHeader,
  Header,
  Page,
} from '@backstage/core-components';
import {
  configApiRef,
  discoveryApiRef,
  useApi,
} from '@backstage/frontend-plugin-api';
import {
  scmAuthApiRef,
  ScmAuthTokenOptions,
} from '@backstage/integration-react';
import Button from '@material-ui/core/Button';
import Typography from '@material-ui/core/Typography';
import { BITBUCKET_BASE_URL_KEY } from './scmAuthApi';

type Ask = 'read' | 'write' | 'pipelines';

/** What each button adds to ScmAuth.forBitbucket's default scopes. */
const ADDITIONAL_SCOPE: Record<
  Ask,
  ScmAuthTokenOptions['additionalScope'] | undefined
> = {
  read: undefined,
  write: { repoWrite: true },
  pipelines: { customScopes: { bitbucket: ['pipeline'] } },
};

const ASKS: { ask: Ask; label: string }[] = [
  { ask: 'read', label: 'Ask for a read token' },
  { ask: 'write', label: 'Ask for a write token' },
  { ask: 'pipelines', label: 'Ask for a Pipelines token' },
];

/**
 * What another plugin (the scaffolder, catalog import) does with
 * `scmAuthApiRef`: asks for the signed-in user's token for a repository URL
 * on the Bitbucket host, for reading, for writing (`repoWrite`), or with a
 * scope the demo consumer lacks (`pipeline`). Shows the scopes the session
 * holds, as the auth backend reports them.
 */
export function BitbucketTokenPage() {
  const scmAuth = useApi(scmAuthApiRef);
  const discovery = useApi(discoveryApiRef);
  const config = useApi(configApiRef);
  const baseUrl =
    config.getOptionalString(BITBUCKET_BASE_URL_KEY) ?? 'https://bitbucket.org';
  const repoUrl = `${baseUrl.replace(/\/+$/, '')}/acme/website`;
  const [scope, setScope] = useState<string>();
  const [result, setResult] = useState<string>();
  const [error, setError] = useState<string>();

  // the session's granted scopes: what a reload gets from the auth backend
  const showScope = useCallback(async () => {
    const base = await discovery.getBaseUrl('auth');
    const env = config.getOptionalString('auth.environment') ?? 'development';
    const res = await fetch(`${base}/bitbucket/refresh?optional&env=${env}`, {
      credentials: 'include',
      headers: { 'x-requested-with': 'XMLHttpRequest' },
    });
    const body = res.ok ? await res.json() : undefined;
    setScope(body?.providerInfo?.scope ?? '(no session)');
  }, [discovery, config]);

  useEffect(() => {
    showScope().catch(e => setError(String(e)));
  }, [showScope]);

  const ask = async (what: Ask) => {
    setResult(undefined);
    setError(undefined);
    try {
      const { token } = await scmAuth.getCredentials({
        url: repoUrl,
        additionalScope: ADDITIONAL_SCOPE[what],
      });
      setResult(`${what} token received (${token.length} characters)`);
      await showScope();
    } catch (e) {
      setError((e as Error).message);
    }
  };

  return (
    <Page themeId="tool">
      <Header
        title="Bitbucket token"
        subtitle="scmAuthApiRef, as other plugins use it"
      />
      <Content>
        <ContentHeader title={`Token for ${repoUrl}`} />
        <Typography paragraph>
          Granted scopes:{' '}
          <span data-testid="granted-scope">{scope ?? '…'}</span>
        </Typography>
        {ASKS.map(({ ask: what, label }) => (
          <Button
            key={what}
            variant="contained"
            color="primary"
            style={{ marginRight: 8 }}
            onClick={() => ask(what)}
          >
            {label}
          </Button>
        ))}
        {result && (
          <Typography paragraph role="status">
            {result}
          </Typography>
        )}
        {error && (
          <Typography paragraph role="alert" color="error">
            {error}
          </Typography>
        )}
      </Content>
    </Page>
  );
}
