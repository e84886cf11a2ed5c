/**
 * `npm run bench`: cached `getToken` throughput and cold-start request counts, for this library and for
 * `@azure/identity`, against the same https token server on 127.0.0.1 (a test CA made for the run).
 *
 * This file makes the CA and re-runs `bench/run.ts` in a child process with NODE_EXTRA_CA_CERTS pointing at it, so
 * both libraries trust the loopback server the normal way. Nothing leaves the machine.
 */
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { makeCertificateAuthority } from "../test/support/tls.js"

const dir = mkdtempSync(join(tmpdir(), "eai-bench-"))
try {
  const ca = await makeCertificateAuthority("effect-azure-identity bench CA")
  const leaf = await ca.issue({ commonName: "127.0.0.1", hosts: ["127.0.0.1", "localhost"] })
  writeFileSync(join(dir, "ca.pem"), ca.certPem)
  writeFileSync(join(dir, "server.pem"), leaf.certPem)
  writeFileSync(join(dir, "server.key"), leaf.keyPem)
  const child = spawnSync(process.execPath, [
    "--import",
    "tsx",
    join(import.meta.dirname, "run.ts"),
    dir,
    ...process.argv.slice(2)
  ], {
    stdio: "inherit",
    env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, "ca.pem") }
  })
  process.exitCode = child.status ?? 1
} finally {
  rmSync(dir, { recursive: true, force: true })
}
