// samlify's cost to build and sign a SAML Response in-process, for bench/oidc_peer.py.
// The Response carries the attributes the bridge sends Zulip, and both the Assertion and the
// Response are signed (RSA-SHA256), as the bridge signs them for Zulip.
// argv: <count> <key.pem> <cert.pem>; prints one JSON line {"cpu_ms": per response}.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(path.join(process.env.NODE_PATH, 'noop.js'));
const saml = require('samlify');

const [count, keyFile, certFile] = process.argv.slice(2);
const privateKey = readFileSync(keyFile, 'utf8');
const signingCert = readFileSync(certFile, 'utf8');
const ZULIP = 'https://zulip.example.edu';
const ACS = `${ZULIP}/complete/saml/`;
const SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';

saml.setSchemaValidator({ validate: async () => 'skipped: we only build' });
const attributes = [['email', 'email'], ['first_name', 'firstName'], ['last_name', 'lastName'],
  ['groups', 'groups']].map(([name, valueTag]) => ({
  name, valueTag, nameFormat: 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic',
  valueXsiType: 'xs:string',
}));
const idp = saml.IdentityProvider({
  entityID: 'http://127.0.0.1/saml/metadata', privateKey, signingCert,
  requestSignatureAlgorithm: SHA256, nameIDFormat: ['urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress'],
  singleSignOnService: [{ Binding: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect', Location: 'http://127.0.0.1/saml/sso' }],
  loginResponseTemplate: { context: saml.SamlLib.defaultLoginResponseTemplate.context, attributes },
});
const sp = saml.ServiceProvider({
  entityID: ZULIP, wantAssertionsSigned: true, wantMessageSigned: true,
  assertionConsumerService: [{ Binding: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST', Location: ACS }],
});
const user = { email: 'student1@example.edu', firstName: 'Ada', lastName: 'Lovelace', groups: 'students' };

// samlify's documented way to fill attributes: a tag-replacement callback over the template.
function replace(template) {
  const now = new Date();
  const later = new Date(now.getTime() + 300000).toISOString();
  const id = idp.entitySetting.generateID();
  const context = saml.SamlLib.replaceTagsByValue(template, {
    ID: id, AssertionID: idp.entitySetting.generateID(), Destination: ACS, Audience: ZULIP,
    EntityID: ZULIP, SubjectRecipient: ACS, Issuer: idp.entityMeta.getEntityID(),
    IssueInstant: now.toISOString(), StatusCode: 'urn:oasis:names:tc:SAML:2.0:status:Success',
    ConditionsNotBefore: now.toISOString(), ConditionsNotOnOrAfter: later,
    SubjectConfirmationDataNotOnOrAfter: later, AssertionConsumerServiceURL: ACS,
    NameIDFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress', NameID: user.email,
    InResponseTo: '', AuthnStatement: '',
    AttributeStatement: saml.SamlLib.attributeStatementBuilder(attributes),
    ...Object.fromEntries(Object.entries(user).map(([k, v]) => [`attr${k[0].toUpperCase()}${k.slice(1)}`, v])),
  });
  return { id, context };
}

async function once() {
  const { context } = await idp.createLoginResponse(sp, null, 'post', user, replace);
  if (!context || context.length < 1000) throw new Error('samlify built no response');
  return context;
}

for (let i = 0; i < 30; i += 1) await once(); // warm-up: JIT, key parsing
const start = process.cpuUsage();
for (let i = 0; i < Number(count); i += 1) await once();
const used = process.cpuUsage(start);
const sample = Buffer.from(await once(), 'base64').toString();
if (process.env.PEER_DUMP) process.stderr.write(sample);
process.stdout.write(`${JSON.stringify({
  cpu_ms: (used.user + used.system) / 1000 / Number(count),
  signatures: (sample.match(/<ds:Signature[ >]/g) || []).length,
  attributes: (sample.match(/<saml:Attribute /g) || []).length,
})}\n`);
