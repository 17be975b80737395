// A real OpenID Provider for frontdesk's tests: panva's certified `oidc-provider`, configured from one JSON
// document (argument 1, or the OIDC_PROVIDER_CONFIG environment variable) so a pytest fixture can start
// several side by side. Nothing here is mocked: discovery, JWKS, authorization (with the devInteractions
// login and consent forms), token, revocation, end-session and back-channel logout are the library's own.
//
// Config (JSON):
//   port      TCP port on 127.0.0.1
//   issuer    e.g. "http://127.0.0.1:PORT" (plain http on loopback is for tests only)
//   clients   oidc-provider client metadata: client_id, client_secret, redirect_uris,
//             post_logout_redirect_uris, backchannel_logout_uri, token_endpoint_auth_method, ...
//   users     [{ "sub": "alice", "claims": { "preferred_username": ..., "email": ..., "groups": [...] } }]
//             (devInteractions makes the typed login the account id, so the login form takes the sub)
//   ttl       seconds: { "AccessToken", "IdToken", "RefreshToken", "Session", "Grant", "Interaction" }
//   rotateRefreshToken  true: every refresh answers a new refresh token (default true)
//
// Test-only extras (not part of any OpenID spec): an empty /favicon.ico, and GET /_test/counts, which answers how
// many times each grant type succeeded at the token endpoint and how many back-channel logouts were sent, so a test can
// assert "exactly one refresh at the provider".
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const raw = process.argv[2] ?? process.env.OIDC_PROVIDER_CONFIG;
if (!raw) {
  console.error('usage: node provider.mjs \'{"port": ..., "issuer": ..., "clients": [...], "users": [...]}\'');
  process.exit(2);
}
const settings = JSON.parse(raw);
const users = new Map((settings.users ?? []).map((user) => [user.sub, user]));
const ttl = settings.ttl ?? {};

// Fresh signing keys per run: RS256 (what most providers use) and ES256, each with its own kid.
function signingKey(type, options, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid: `${alg.toLowerCase()}-${randomBytes(4).toString('hex')}`, alg, use: 'sig' };
}
const jwks = {
  keys: [
    signingKey('rsa', { modulusLength: 2048 }, 'RS256'),
    signingKey('ec', { namedCurve: 'P-256' }, 'ES256'),
  ],
};

const counts = { grants: {}, backchannel_logout: 0, backchannel_logout_errors: 0 };

const provider = new Provider(settings.issuer, {
  clients: settings.clients,
  jwks,
  cookies: { keys: [randomBytes(32).toString('hex')] },
  async findAccount(_ctx, id) {
    // The devInteractions login form takes any login; only the configured users exist.
    const user = users.get(id);
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: user.sub, email_verified: true, ...user.claims };
      },
    };
  },
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  // Claims go into the ID token (not only userinfo), as Keycloak does by default.
  conformIdTokenClaims: false,
  scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    backchannelLogout: { enabled: true },
    introspection: { enabled: true },
  },
  // Spec-correct providers drop offline_access unless prompt=consent; Keycloak, Okta and Auth0 issue refresh
  // tokens without it, and so does this test provider whenever the client may use the refresh_token grant.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: () => settings.rotateRefreshToken ?? true,
  pkce: { required: () => true },
  // The provider's outgoing requests (back-channel logout) refuse loopback and private addresses, a sound SSRF
  // guard in production; the relying parties of the tests are all on 127.0.0.1, so this provider lets them through.
  fetch: (url, options) => {
    delete options.dispatcher;
    return fetch(url, options);
  },
  ttl: {
    AccessToken: ttl.AccessToken ?? 300,
    IdToken: ttl.IdToken ?? 300,
    RefreshToken: ttl.RefreshToken ?? 3600,
    Session: ttl.Session ?? 3600,
    Grant: ttl.Grant ?? 3600,
    Interaction: ttl.Interaction ?? 600,
    AuthorizationCode: ttl.AuthorizationCode ?? 60,
  },
});

provider.on('grant.success', (ctx) => {
  const type = ctx.oidc.params.grant_type;
  counts.grants[type] = (counts.grants[type] ?? 0) + 1;
});
provider.on('backchannel.success', () => { counts.backchannel_logout += 1; });
provider.on('backchannel.error', (_ctx, error) => {
  counts.backchannel_logout_errors += 1;
  console.error('back-channel logout failed:', error.message, error.cause ?? '');
});
provider.on('server_error', (_ctx, error) => console.error('server_error:', error));

provider.use(async (ctx, next) => {
  if (ctx.path === '/_test/counts' && ctx.method === 'GET') {
    ctx.body = counts;
    return;
  }
  if (ctx.path === '/favicon.ico') {
    ctx.status = 204; // browsers ask for it on the login page; a 404 would be a console error in the browser tests
    return;
  }
  await next();
});

provider.listen(settings.port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${settings.issuer}`);
});
