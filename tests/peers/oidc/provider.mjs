// A real OpenID provider for Quire's OIDC tests: npm's `oidc-provider`, with one confidential
// client and accounts the tests make as they sign in.
//
//   PORT=0 REDIRECT_URI=http://127.0.0.1:4000/login/oidc/callback node provider.mjs
//
// prints `listening http://127.0.0.1:PORT` once it answers. Quire is the relying party, so
// everything it sees is oidc-provider's own: discovery, the JWKS, the authorization endpoint
// (PKCE required), the token endpoint (codes are single use) and the signed ID token.
//
// Two things exist only for the tests, on paths Quire never calls:
// - GET /interaction/UID?sub=…&preferred_username=…&email=…&groups=a,b signs the browser in as
//   that account (made or updated from the query) and consents, in place of a login page;
// - POST /test/tamper?mode=… changes the ID tokens the token endpoint hands out from then on,
//   re-signed so that only the named fault is wrong: `audience` (another client's), `expired`
//   (an hour ago), `issuer` (another issuer), `nonce` (another nonce), `foreign-key` (signed by
//   a key that is not in the JWKS, under the published key id), `rotate` (a new key with a new
//   id, published in the JWKS from now on: the rotation a relying party must follow), `none`.
import http from 'node:http';
import { URL } from 'node:url';

import * as jose from 'jose';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 0);
const redirectUri = process.env.REDIRECT_URI;
if (!redirectUri) {
  console.error('provider.mjs: REDIRECT_URI is required');
  process.exit(2);
}
const clientId = process.env.CLIENT_ID || 'quire';
const clientSecret = process.env.CLIENT_SECRET || 'quire-test-secret';

async function signingKey(kid) {
  const { privateKey, publicKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await jose.exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
  const pub = { ...(await jose.exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return { privateKey, jwk, pub };
}

const main = await signingKey('main');
const foreign = await signingKey('main');
const next = await signingKey('next');

/** The accounts, by subject, as the tests described them. */
const accounts = new Map();
let mode = 'none';

const server = http.createServer();
server.listen(port, '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [main.jwk] },
  cookies: { keys: ['quire-test-cookie-key'] },
  pkce: { required: () => true },
  // The profile claims go into the ID token, as Keycloak and Entra ID put them by default.
  conformIdTokenClaims: false,
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name', 'groups'],
    email: ['email', 'email_verified'],
  },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: {
    AccessToken: 600,
    AuthorizationCode: 60,
    IdToken: 600,
    Interaction: 600,
    Session: 600,
    Grant: 600,
  },
  async findAccount(ctx, sub) {
    const claims = accounts.get(sub);
    if (!claims) return undefined;
    return { accountId: sub, claims: async () => ({ sub, ...claims }) };
  },
});

// The tampering, after oidc-provider made its token response.
provider.use(async (ctx, nextMiddleware) => {
  await nextMiddleware();
  if (ctx.path === '/jwks' && mode === 'rotate' && ctx.body && Array.isArray(ctx.body.keys)) {
    ctx.body = { keys: [...ctx.body.keys, next.pub] };
  }
  if (ctx.path !== '/token' || mode === 'none' || !ctx.body || !ctx.body.id_token) return;
  const claims = jose.decodeJwt(ctx.body.id_token);
  const now = Math.floor(Date.now() / 1000);
  let key = main;
  switch (mode) {
    case 'audience': claims.aud = 'someone-else'; break;
    case 'expired': claims.iat = now - 7200; claims.exp = now - 3600; break;
    case 'issuer': claims.iss = 'http://127.0.0.1:1/another-issuer'; break;
    case 'nonce': claims.nonce = 'not-the-nonce-quire-sent'; break;
    case 'foreign-key': key = foreign; break;
    case 'rotate': key = next; break;
    default: return;
  }
  ctx.body = {
    ...ctx.body,
    id_token: await new jose.SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: key.jwk.kid, typ: 'JWT' })
      .sign(key.privateKey),
  };
});

const callback = provider.callback();

server.on('request', async (req, res) => {
  const url = new URL(req.url, issuer);
  try {
    if (req.method === 'POST' && url.pathname === '/test/tamper') {
      mode = url.searchParams.get('mode') || 'none';
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'GET' && url.pathname.startsWith('/interaction/')) {
      const details = await provider.interactionDetails(req, res);
      const sub = url.searchParams.get('sub');
      if (!sub) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('sub is required');
        return;
      }
      const claims = {};
      for (const name of ['preferred_username', 'name', 'email']) {
        if (url.searchParams.has(name)) claims[name] = url.searchParams.get(name);
      }
      if (claims.email) claims.email_verified = url.searchParams.get('email_verified') !== 'false';
      if (url.searchParams.has('groups')) {
        claims.groups = url.searchParams.get('groups').split(',').filter(Boolean);
      }
      accounts.set(sub, claims);
      const grant = new provider.Grant({ accountId: sub, clientId: details.params.client_id });
      grant.addOIDCScope(details.params.scope);
      const grantId = await grant.save();
      await provider.interactionFinished(
        req,
        res,
        { login: { accountId: sub }, consent: { grantId } },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    callback(req, res);
  } catch (err) {
    console.error(err);
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(String(err));
  }
});

console.log(`listening ${issuer}`);
