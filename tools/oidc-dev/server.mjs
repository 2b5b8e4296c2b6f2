// A development OpenID provider on loopback (oidc-provider, a certified implementation), for the tests and
// `make run` only: a login page for the demo accounts of accounts.json, the authorization code flow with PKCE for
// the portal (a public client), refresh tokens for its silent renewal, RP-initiated logout, and access tokens as
// JWTs (RS256) whose claims the services read: `sub`, `role`, `agency`, `aud` (the services' audience), `iss`.
//
// Settings (environment): OIDC_DEV_PORT (8010), OIDC_DEV_PORTAL_URLS (comma-separated origins of the portal,
// http://127.0.0.1:8000), OIDC_DEV_AUDIENCE (canvass), OIDC_DEV_ACCESS_TTL (seconds, 900),
// OIDC_DEV_CLIENT_ID (canvass-portal), OIDC_DEV_ACCOUNTS (a JSON file like accounts.json).

import { generateKeyPairSync, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import Provider, { errors } from "oidc-provider";

const env = process.env;
const PORT = Number(env.OIDC_DEV_PORT || 8010);
const ISSUER = `http://127.0.0.1:${PORT}`;
const PORTALS = (env.OIDC_DEV_PORTAL_URLS || "http://127.0.0.1:8000").split(",").map((u) => u.trim().replace(/\/$/, ""));
const AUDIENCE = env.OIDC_DEV_AUDIENCE || "canvass";
const ACCESS_TTL = Number(env.OIDC_DEV_ACCESS_TTL || 900);
const CLIENT_ID = env.OIDC_DEV_CLIENT_ID || "canvass-portal";
// The resource the portal's access tokens are for: every token endpoint answer is a JWT for the services.
const RESOURCE = "urn:canvass:services";
const directory = JSON.parse(readFileSync(env.OIDC_DEV_ACCOUNTS || new URL("./accounts.json", import.meta.url), "utf8"));
const accounts = new Map(directory.accounts.map((a) => [a.username, a]));

// A fresh signing key at each start: nothing signed by an earlier run is honoured after a restart.
const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: "jwk" }), kid: randomBytes(8).toString("hex"), use: "sig", alg: "RS256" };

const page = (title, body) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} — Canvass development sign-in</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
label{display:block;margin-top:1rem;font-weight:600}input{display:block;width:100%;padding:.5rem;font-size:1rem;margin-top:.25rem;box-sizing:border-box}
button{margin-top:1.25rem;margin-right:.5rem;padding:.6rem 1.2rem;font-size:1rem;background:#005ea2;color:#fff;border:0;border-radius:4px}
button.secondary{background:#fff;color:#005ea2;border:2px solid #005ea2}.error{color:#b50909;font-weight:600}
table{border-collapse:collapse;margin-top:1rem;font-size:.9rem}td,th{border:1px solid #a9aeb1;padding:.25rem .5rem;text-align:left}</style>
</head><body><main>${body}</main></body></html>`;

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, client, error, username = "") {
  const rows = directory.accounts
    .map((a) => `<tr><td>${escape(a.username)}</td><td>${escape(a.role)}</td><td>${escape(a.agency)}</td></tr>`)
    .join("");
  return page(
    "Sign in",
    `<h1>Sign in to your agency</h1>
<p>${escape(client)} asks you to sign in. This is the development identity provider: every demo account's password is
<code>${escape(directory.password)}</code>.</p>
${error ? `<p class="error" role="alert">${escape(error)}</p>` : ""}
<form method="post" action="/interaction/${escape(uid)}/login" autocomplete="off">
<label for="username">Username</label><input id="username" name="username" value="${escape(username)}" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" required>
<button type="submit">Sign in</button>
</form>
<table><caption>Demo accounts</caption><thead><tr><th scope="col">Username</th><th scope="col">Role</th><th scope="col">Agency</th></tr></thead><tbody>${rows}</tbody></table>`,
  );
}

function passwordMatches(given) {
  const a = Buffer.from(String(given));
  const b = Buffer.from(directory.password);
  return a.length === b.length && timingSafeEqual(a, b);
}

const configuration = {
  clients: [
    {
      client_id: CLIENT_ID,
      client_name: "Canvass portal",
      token_endpoint_auth_method: "none",
      application_type: "web",
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      redirect_uris: PORTALS.map((p) => `${p}/agency/callback`),
      post_logout_redirect_uris: PORTALS.map((p) => `${p}/agency/signed-out`),
    },
  ],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString("hex")] },
  pkce: { required: () => true },
  claims: { openid: ["sub"], profile: ["name", "role", "agency"] },
  async findAccount(_ctx, id) {
    const account = accounts.get(id);
    if (!account) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, name: account.name, role: account.role, agency: account.agency }) };
  },
  // The portal is the provider's own first-party client: what it asks is granted without a consent page.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const existing = await ctx.oidc.provider.Grant.find(grantId);
      if (existing) return existing;
    }
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope("openid profile");
    grant.addOIDCClaims(["sub", "name", "role", "agency"]);
    grant.addResourceScope(RESOURCE, "canvass");
    await grant.save();
    return grant;
  },
  // Refresh tokens let the portal renew its access token silently; they end with the provider's session.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed("refresh_token"),
  clientBasedCORS: (_ctx, origin) => PORTALS.includes(origin),
  extraTokenClaims: async (_ctx, token) => {
    if (token.kind !== "AccessToken") return undefined;
    const account = accounts.get(token.accountId);
    return account ? { role: account.role, agency: account.agency } : undefined;
  },
  ttl: {
    AccessToken: ACCESS_TTL,
    IdToken: ACCESS_TTL,
    Session: 8 * 3600,
    Grant: 8 * 3600,
    RefreshToken: 8 * 3600,
    Interaction: 3600,
    AuthorizationCode: 60,
  },
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      logoutSource: async (ctx, form) => {
        ctx.body = page(
          "Sign out",
          `<h1>Sign out of your agency?</h1><p>You are signing out of the Canvass development identity provider, and of every
application you signed in to through it.</p>${form}
<button type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign out</button>
<button type="submit" form="op.logoutForm" class="secondary">No, stay signed in</button>`,
        );
      },
      postLogoutSuccessSource: async (ctx) => {
        ctx.body = page("Signed out", "<h1>You are signed out</h1>");
      },
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, indicator) => {
        if (indicator !== RESOURCE) throw new errors.InvalidTarget();
        return { scope: "canvass", audience: AUDIENCE, accessTokenTTL: ACCESS_TTL, accessTokenFormat: "jwt", jwt: { sign: { alg: "RS256" } } };
      },
    },
  },
  renderError: async (ctx, out) => {
    ctx.type = "html";
    ctx.body = page("Error", `<h1>The sign-in could not go on</h1><p>${escape(out.error)}: ${escape(out.error_description || "")}</p>`);
  },
};

const provider = new Provider(ISSUER, configuration);
const callback = provider.callback();

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 10_000) throw new Error("form too large");
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}

function send(res, status, html) {
  res.writeHead(status, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" });
  res.end(html);
}

// The interactions (the login page) are this file's own; everything else is the provider's.
const server = http.createServer(async (req, res) => {
  const match = /^\/interaction\/([^/?]+)(\/login)?(?:\?|$)/.exec(req.url || "");
  if (!match) {
    callback(req, res);
    return;
  }
  try {
    const details = await provider.interactionDetails(req, res);
    const client = (await provider.Client.find(details.params.client_id))?.clientName || details.params.client_id;
    if (details.prompt.name !== "login") {
      // The grant is made by loadExistingGrant; nothing else is asked.
      await provider.interactionFinished(req, res, {}, { mergeWithLastSubmission: true });
      return;
    }
    if (req.method === "POST" && match[2]) {
      const form = await readForm(req);
      const username = (form.get("username") || "").trim();
      if (!accounts.has(username) || !passwordMatches(form.get("password") || "")) {
        send(res, 200, loginPage(details.uid, client, "The username or the password is wrong.", username));
        return;
      }
      await provider.interactionFinished(req, res, { login: { accountId: username } }, { mergeWithLastSubmission: false });
      return;
    }
    send(res, 200, loginPage(details.uid, client, ""));
  } catch (err) {
    send(res, 400, page("Error", `<h1>The sign-in could not go on</h1><p>${escape(err.message)}</p><p>Start again from the portal.</p>`));
  }
});

server.listen(PORT, "127.0.0.1", () => {
  console.log(`development OpenID provider: ${ISSUER} (client ${CLIENT_ID}; access tokens for ${AUDIENCE}, ${ACCESS_TTL} s)`);
});
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => server.close(() => process.exit(0)));
