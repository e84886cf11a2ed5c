/**
 * The device-code flow: the device-authorization endpoint, the `/devicelogin` page that approves a code, the
 * control API's approval and denial, and the `device_code` grant a client polls.
 *
 * @internal
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import * as Schema from "effect/Schema"
import { randomUuid } from "../../ids.js"
import { baseUrl, entraResponse, field, json, readForm, text } from "../http.js"
import type { EntraError } from "../responses.js"
import { entraError } from "../responses.js"
import type { State } from "../state.js"
import { findUser } from "../state.js"
import { authenticateClient } from "./clientAuth.js"
import type { TokenRequest } from "./common.js"
import { clientFields, ClientForm, findAppOrFail, invalidGrant, required, resolveTenant, scopesOf } from "./common.js"
import { userTokens } from "./userTokens.js"

const DeviceCodeForm = Schema.Struct({ ...clientFields, device_code: field })

/** `grant_type=urn:ietf:params:oauth:grant-type:device_code`: pending, declined, expired, or the user's tokens. @internal */
export const deviceCode = (
  state: State,
  request: TokenRequest
): Effect.Effect<HttpServerResponse.HttpServerResponse, EntraError, HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function*() {
    const form = yield* readForm(DeviceCodeForm)
    const app = request.app
    const value = yield* required(form.device_code, "device_code")
    const entry = state.deviceCodes.get(value)
    if (entry === undefined || entry.clientId !== app.clientId) {
      return yield* Effect.fail(
        entraError(
          400,
          "bad_verification_code",
          70000,
          "The provided value for the 'device_code' parameter is not valid."
        )
      )
    }
    yield* authenticateClient(state, request, form, { confidentialOnly: false })
    const now = yield* Clock.currentTimeMillis
    if (entry.status._tag === "Redeemed") {
      return yield* Effect.fail(invalidGrant(54005, "OAuth2 device code was already redeemed."))
    }
    if (now > entry.expiresAtMillis) {
      return yield* Effect.fail(entraError(400, "expired_token", 70019, "Verification code expired."))
    }
    if (entry.status._tag === "Denied") {
      return yield* Effect.fail(
        entraError(400, "authorization_declined", 70000, "The user declined the authorization request.")
      )
    }
    if (entry.status._tag === "Pending") {
      return yield* Effect.fail(
        entraError(
          400,
          "authorization_pending",
          70016,
          "OAuth 2.0 device flow error. Authorization is pending. Continue polling."
        )
      )
    }
    const user = findUser(state, entry.status.username)
    if (user === undefined) return yield* Effect.fail(invalidGrant(50034, "The user account does not exist."))
    entry.status = { _tag: "Redeemed" }
    return yield* userTokens(state, request, form, {
      app,
      user,
      tenantId: entry.tenantId,
      scopes: entry.scopes,
      alwaysRefreshToken: false
    })
  })

const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ23456789"

const randomUserCode = Effect.map(
  Effect.all(Array.from({ length: 9 }, () => Random.nextIntBetween(0, userCodeAlphabet.length))),
  (ix) => ix.map((i) => userCodeAlphabet[i]).join("")
)

/** `POST /{tenant}/oauth2/v2.0/devicecode`. @internal */
export const deviceAuthorization = (state: State) =>
  Effect.gen(function*() {
    const tenantId = yield* resolveTenant(state, (yield* HttpRouter.params).tenant)
    const form = yield* readForm(ClientForm)
    const clientId = yield* required(form.client_id, "client_id")
    const app = yield* findAppOrFail(state, clientId, tenantId)
    const scopes = yield* scopesOf(form.scope)
    if (!app.publicClient) {
      return yield* Effect.fail(
        entraError(
          401,
          "invalid_client",
          7000218,
          "The request body must contain the following parameter: 'client_assertion' or 'client_secret'. (The " +
            "app does not allow public client flows.)"
        )
      )
    }
    const now = yield* Clock.currentTimeMillis
    const userCode = yield* randomUserCode
    const device = `DAQABAAEAAAD-emulator-${(yield* randomUuid).replace(/-/g, "")}${
      (yield* randomUuid).replace(/-/g, "")
    }`
    const expiresIn = 900
    const firstUser = state.settings.users[0]
    state.deviceCodes.set(device, {
      clientId: app.clientId,
      tenantId,
      userCode,
      scopes,
      expiresAtMillis: now + expiresIn * 1000,
      status: state.settings.autoApproveDeviceCodes && firstUser !== undefined
        ? { _tag: "Approved", username: firstUser.username }
        : { _tag: "Pending" }
    })
    const verificationUri = `${yield* baseUrl(state)}/devicelogin`
    return json(200, {
      user_code: userCode,
      device_code: device,
      verification_uri: verificationUri,
      expires_in: expiresIn,
      interval: state.settings.deviceCodeIntervalSeconds,
      message:
        `To sign in, use a web browser to open the page ${verificationUri} and enter the code ${userCode} to authenticate.`
    })
  }).pipe(Effect.catchAll((e) => entraResponse(state, e)))

/** Approves (or denies) a pending device code by its user code. @internal */
export const decideDeviceCode = (
  state: State,
  userCode: string,
  decision: { readonly _tag: "Approved"; readonly username: string } | { readonly _tag: "Denied" }
): boolean => {
  for (const entry of state.deviceCodes.values()) {
    if (entry.userCode === userCode.trim().toUpperCase() && entry.status._tag === "Pending") {
      entry.status = decision
      return true
    }
  }
  return false
}

const DeviceLoginForm = Schema.Struct({ user_code: field, username: field })
type DeviceLoginForm = typeof DeviceLoginForm.Type

/** `GET /devicelogin` (a form) and `POST /devicelogin` (`user_code`, optional `username`): approves a code. @internal */
export const deviceLogin = (state: State) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (request.method === "GET") {
      return text(
        200,
        `<!doctype html><title>Emulator device login</title><form method="post"><label>Code <input name="user_code">` +
          `</label> <label>User <input name="username"></label> <button>Approve</button></form>`,
        "text/html; charset=utf-8"
      )
    }
    const form = yield* readForm(DeviceLoginForm).pipe(
      Effect.catchAll(() => Effect.succeed<DeviceLoginForm | undefined>(undefined))
    )
    if (form === undefined) return text(413, "The request is too large.")
    const userCode = form.user_code ?? ""
    const user = findUser(state, form.username || undefined)
    if (user === undefined) return text(400, "No such user.")
    return decideDeviceCode(state, userCode, { _tag: "Approved", username: user.username })
      ? text(200, `Approved: ${user.username} is signed in. You can close this window.`)
      : text(400, "No pending sign-in has this code.")
  })
