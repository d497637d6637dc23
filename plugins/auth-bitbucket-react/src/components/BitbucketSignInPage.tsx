import {
  Content,
  InfoCard,
  Page,
  Progress,
  UserIdentity,
} from '@backstage/core-components';
import {
  bitbucketAuthApiRef,
  configApiRef,
  SignInPageProps,
  useApi,
} from '@backstage/core-plugin-api';
import Button from '@material-ui/core/Button';
import Grid from '@material-ui/core/Grid';
import Typography from '@material-ui/core/Typography';
import { useEffect, useState } from 'react';

/**
 * The text of a failed sign-in as the user should read it: the backend's
 * message, without the wrappers the auth client adds around it.
 */
export function readableSignInError(error: unknown): string {
  let message =
    error instanceof Error ? error.message : String(error ?? 'Unknown error');
  message = message
    .replace(/^Login failed;\s*caused by\s*/i, '')
    .replace(/^(?:[A-Z][A-Za-z]*Error):\s*/, '');
  if (/popup was closed/i.test(message)) {
    return 'The Bitbucket sign-in window was closed before sign-in finished. Click "Sign in with Bitbucket" to try again.';
  }
  return message;
}

/**
 * A sign-in page with one "Sign in with Bitbucket" button. It restores an
 * existing session silently, and shows why a sign-in failed (cancelled,
 * not in the catalog, a missing consumer permission…) as text on the page.
 *
 * @public
 */
export function BitbucketSignInPage(props: SignInPageProps) {
  const { onSignInSuccess } = props;
  const authApi = useApi(bitbucketAuthApiRef);
  const configApi = useApi(configApiRef);
  const title = configApi.getOptionalString('app.title') ?? 'Backstage';
  const [checking, setChecking] = useState(true);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();

  const finish = async (instantPopup: boolean) => {
    const identity = await authApi.getBackstageIdentity({
      instantPopup,
      optional: !instantPopup,
    });
    if (!identity) return false;
    const profile = await authApi.getProfile();
    onSignInSuccess(
      UserIdentity.create({
        identity: identity.identity,
        authApi,
        profile,
      }),
    );
    return true;
  };

  useEffect(() => {
    let cancelled = false;
    finish(false)
      .catch(() => false) // no session to restore: show the button
      .finally(() => !cancelled && setChecking(false));
    return () => {
      cancelled = true;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  const signIn = async () => {
    setBusy(true);
    setError(undefined);
    try {
      if (!(await finish(true))) {
        setError('Bitbucket did not return a Backstage identity.');
      }
    } catch (e) {
      setError(readableSignInError(e));
    } finally {
      setBusy(false);
    }
  };

  if (checking) return <Progress />;

  return (
    <Page themeId="home">
      <Content>
        <Grid container justifyContent="center" style={{ marginTop: 64 }}>
          <Grid item xs={12} sm={8} md={5}>
            <InfoCard title={`Sign in to ${title}`}>
              <Typography variant="body1" paragraph>
                Use your Bitbucket Cloud account.
              </Typography>
              {error && (
                <Typography
                  role="alert"
                  color="error"
                  variant="body2"
                  paragraph
                  data-testid="sign-in-error"
                >
                  {error}
                </Typography>
              )}
              <Button
                variant="contained"
                color="primary"
                onClick={signIn}
                disabled={busy}
              >
                Sign in with Bitbucket
              </Button>
            </InfoCard>
          </Grid>
        </Grid>
      </Content>
    </Page>
  );
}
