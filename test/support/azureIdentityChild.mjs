// Run as a child process by test/integration/azureIdentity.test.ts: gets one token with @azure/identity (a client
// this project did not write) and prints the outcome as one JSON line. Configuration comes from the environment the
// test gives it (NODE_EXTRA_CA_CERTS makes Node trust the emulator's test CA for https).
import { ClientSecretCredential, ManagedIdentityCredential } from "@azure/identity"

const env = process.env
const scope = env.DEMO_SCOPE ?? "https://vault.azure.net/.default"

const credential = env.DEMO_MODE === "managed-identity"
  ? new ManagedIdentityCredential()
  : new ClientSecretCredential(env.DEMO_TENANT_ID, env.DEMO_CLIENT_ID, env.DEMO_CLIENT_SECRET, {
    authorityHost: env.DEMO_AUTHORITY_HOST,
    disableInstanceDiscovery: true
  })

try {
  const token = await credential.getToken(scope)
  console.log(JSON.stringify({ ok: true, token: token.token, expiresOnTimestamp: token.expiresOnTimestamp }))
} catch (error) {
  console.log(JSON.stringify({ ok: false, name: error?.name, message: String(error?.message ?? error) }))
}
