import { assert, describe, it } from "@effect/vitest"
import * as dns from "node:dns"
import * as net from "node:net"

describe("network guard (test setup)", () => {
  it("refuses connections to non-loopback addresses", () => {
    assert.throws(() => net.connect({ host: "169.254.169.254", port: 80 }), /network guard/)
    assert.throws(() => net.connect(443, "login.microsoftonline.com"), /network guard/)
  })
  it("refuses DNS lookups of other hosts", async () => {
    assert.throws(() => dns.lookup("login.microsoftonline.com", () => {}), /network guard/)
    let error: unknown
    await dns.promises.lookup("example.com").catch((e) => (error = e))
    assert.match(String(error), /network guard/)
  })
  it("allows loopback", async () => {
    const server = net.createServer((s) => s.end())
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const port = (server.address() as net.AddressInfo).port
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.destroy()
        resolve()
      })
      socket.on("error", reject)
    })
    await new Promise((resolve) => server.close(resolve))
  })
  it("blocks fetch to other hosts", async () => {
    const result = await fetch("http://169.254.169.254/metadata").then(() => "connected", (e) => String(e.cause ?? e))
    assert.match(result, /network guard/)
  })
})
