/**
 * A TCP proxy on loopback in front of a server (Redis), to make that server unavailable to one client without
 * touching it: `close` stops listening and cuts every connection, `open` listens again on the same port,
 * `pause` keeps connections open but holds what the client sends until `resume` (a server that does not answer).
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as net from "node:net"

export interface TcpProxy {
  readonly port: number
  readonly close: Effect.Effect<void>
  readonly open: Effect.Effect<void>
  readonly pause: Effect.Effect<void>
  readonly resume: Effect.Effect<void>
}

export const tcpProxy = (
  target: { readonly host: string; readonly port: number }
): Effect.Effect<TcpProxy, never, Scope.Scope> =>
  Effect.gen(function*() {
    const sockets = new Set<net.Socket>()
    let paused = false
    const held: Array<() => void> = []
    let server: net.Server | undefined
    const start = (port: number) =>
      Effect.async<number>((resume) => {
        const s = net.createServer((client) => {
          const upstream = net.connect(target.port, target.host)
          for (const socket of [client, upstream]) {
            sockets.add(socket)
            socket.on("close", () => sockets.delete(socket))
            socket.on("error", () => {})
          }
          client.on("data", (chunk) => {
            if (paused) held.push(() => upstream.write(chunk))
            else upstream.write(chunk)
          })
          upstream.on("data", (chunk) => client.write(chunk))
          client.on("close", () => upstream.destroy())
          upstream.on("close", () => client.destroy())
        })
        server = s
        s.listen(port, "127.0.0.1", () => resume(Effect.succeed((s.address() as net.AddressInfo).port)))
      })
    const stop = Effect.async<void>((resume) => {
      const s = server
      server = undefined
      for (const socket of sockets) socket.destroy()
      if (s === undefined) return resume(Effect.void)
      s.close(() => resume(Effect.void))
    })
    const port = yield* Effect.acquireRelease(start(0), () => stop)
    const proxy: TcpProxy = {
      port,
      close: stop,
      open: Effect.asVoid(start(port)),
      pause: Effect.sync(() => {
        paused = true
      }),
      resume: Effect.sync(() => {
        paused = false
        for (const write of held.splice(0)) write()
      })
    }
    return proxy
  })
