/**
 * Loaded before every test file (vitest `setupFiles`): no test may depend on the machine it runs on. The variables
 * the library reads (Azure, managed identity, `HOME`) are removed or replaced in this worker's environment — which
 * every child process a test starts inherits unless it is given its own — and the time zone is fixed to UTC. Tests
 * configure credentials through `ConfigProvider.fromMap`, tool tests build their own `PATH`.
 */
const env = process.env
for (const name of Object.keys(env)) {
  if (/^(AZURE_|IDENTITY_|MSI_|IMDS_|AZD_|MSAL_)/i.test(name)) delete env[name]
}
// a home directory that does not exist: nothing of the user's (an MSAL cache, an az login) can be found
env.HOME = "/nonexistent-home-of-effect-azure-identity-tests"
delete env.USERPROFILE
env.TZ = "UTC"
