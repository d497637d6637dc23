export interface Config {
  /** The demo app's `scmAuthApiRef` (src/modules/bitbucketToken). */
  scmAuth?: {
    bitbucketCloud?: {
      /**
       * The Bitbucket Cloud site whose URLs get the signed-in user's token
       * from the `bitbucket` sign-in provider. Default: https://bitbucket.org.
       * @visibility frontend
       */
      baseUrl?: string;
    };
  };
}
