/** A live camera's player in the agency workspace: a viewing asked of the relay with the agency user's token (a
 * single-use grant), the stream fetched once with that grant and its fragmented MP4 appended to a MediaSource,
 * kept near the live edge. Play, pause and stop are buttons with names; each change of state is said in the
 * player's live region ("connecting", "live", "window ended", "refused"). When the stream ends, the window is
 * asked about again and the player says why it ended; the old grant is never used again (Play asks for a new
 * viewing, which the relay decides anew). A viewing lasts no longer than the token that asked for it: when the
 * relay ends it at that token's expiry, the player goes on by itself under a new viewing with the portal's
 * silently renewed token, or, when there is none (signed out), says why it stopped and Play asks again. */

import { focus, h } from "./dom";
import { failureText } from "./forms";
import { t, type MessageKey } from "./i18n";
import { createViewing, relayFailure, relayUrl, type RelayFailure } from "./relay";
import { claimsOf, staffToken } from "./staff";

// What the relay's answer names when it can (`video/mp4; codecs="avc1.42c01e"`), else the constrained baseline
// profile every H.264 camera can be decoded as (decision 0011).
export const DEFAULT_TYPE = 'video/mp4; codecs="avc1.42E01E"';
// How far behind the newest video the player may fall before it jumps to it (a paused player resumed, a slow tab).
const MAX_LAG_S = 3;
// How much already-played video the buffer keeps (older is removed, so a long watch does not fill the memory).
const KEEP_S = 20;
// The relay ends a viewing at its token's `exp` by the relay's clock; this browser's may differ by a few seconds.
const CLOCK_SLACK_S = 5;

export type PlayerState = "idle" | "connecting" | "live" | "paused" | "stopped" | "ended" | "expired" | "refused" | "offline" | "failed" | "unsupported";

/** Why a stream the relay ended went (the window still open, or not known to be closed): the token that asked
 * for the viewing expired (`exp`, seconds since the epoch; null when it named none), or else the owner's camera
 * went offline. */
export function streamEndedBy(tokenExpiresAt: number | null, nowS: number): "expired" | "offline" {
  return tokenExpiresAt !== null && nowS >= tokenExpiresAt - CLOCK_SLACK_S ? "expired" : "offline";
}

/** Whether a viewing its token ended goes on by itself: the portal holds a token renewed since (a later `exp`)
 * that is good for a while yet; otherwise (signed out, or not renewed) the player says why it stopped. */
export function continuesWith(endedExp: number | null, renewedExp: number | null, nowS: number): boolean {
  return renewedExp !== null && renewedExp > (endedExp ?? 0) && renewedExp > nowS + CLOCK_SLACK_S * 2;
}

export interface PlayerOptions {
  cameraId: string;
  name: string;
  /** Whether the window is still open to the agency, asked after the stream ends (true / false / null: unknown). */
  windowOpen: () => Promise<boolean | null>;
}

export class LivePlayer {
  readonly element: HTMLElement;
  state: PlayerState = "idle";
  private readonly video: HTMLVideoElement;
  private readonly status: HTMLElement;
  private readonly overlay: HTMLElement;
  private readonly play: HTMLButtonElement;
  private readonly pause: HTMLButtonElement;
  private readonly stop: HTMLButtonElement;
  private abort: AbortController | null = null;
  private objectUrl: string | null = null;
  private windowEnded = false;
  private tokenExpiresAt: number | null = null; // the `exp` of the token the current viewing was asked with

  constructor(private readonly o: PlayerOptions) {
    this.video = h("video", { class: "ws-live__video", muted: true, playsinline: true, "aria-label": t("wsl.video", { camera: o.name }) });
    this.video.muted = true;
    this.status = h("p", { class: "ws-live__status", role: "status", "aria-live": "polite" });
    // The state, said on the picture too while there is none (the status below is what is announced).
    this.overlay = h("p", { class: "ws-live__overlay", "aria-hidden": "true" });
    const button = (key: MessageKey, extra: string) =>
      h("button", { type: "button", class: `usa-button ${extra}`, "aria-label": t(key, { camera: o.name }) }, t(`${key}_short` as MessageKey));
    this.play = button("wsl.play", "");
    this.pause = button("wsl.pause", "usa-button--outline");
    this.stop = button("wsl.stop", "usa-button--outline");
    this.play.addEventListener("click", () => void this.start());
    this.pause.addEventListener("click", () => this.togglePause());
    this.stop.addEventListener("click", () => this.halt("stopped"));
    this.element = h(
      "figure",
      { class: "ws-live__player", "data-camera": o.cameraId },
      h("div", { class: "ws-live__screen" }, this.video, this.overlay),
      h("figcaption", {}, h("div", { class: "ws-live__controls" }, this.play, this.pause, this.stop), this.status),
    );
    this.set("idle");
  }

  private set(state: PlayerState, detail: string | null = null): void {
    this.state = state;
    this.element.dataset.state = state;
    const text = t(`wsl.state.${state}` as MessageKey);
    this.status.textContent = detail ? `${text} ${detail}` : text;
    this.overlay.textContent = state === "live" || state === "paused" ? "" : text;
    const running = state === "connecting" || state === "live" || state === "paused";
    this.play.hidden = running || this.windowEnded || state === "unsupported";
    this.pause.hidden = !(state === "live" || state === "paused");
    this.pause.textContent = t(state === "paused" ? "wsl.resume_short" : "wsl.pause_short");
    this.pause.setAttribute("aria-label", t(state === "paused" ? "wsl.resume" : "wsl.pause", { camera: this.o.name }));
    this.pause.setAttribute("aria-pressed", String(state === "paused"));
    this.stop.hidden = !running;
  }

  /** The window has ended (its time ran out, or the list no longer has it): the player stops and says so. */
  windowClosed(): void {
    this.windowEnded = true;
    const hadFocus = this.element.contains(document.activeElement);
    this.halt("ended");
    if (hadFocus) focus(this.status);
  }

  async start(): Promise<void> {
    if (this.abort || this.windowEnded) return;
    if (!("MediaSource" in window) || !MediaSource.isTypeSupported(DEFAULT_TYPE)) {
      this.set("unsupported");
      return;
    }
    const abort = new AbortController();
    this.abort = abort;
    this.set("connecting");
    const token = await staffToken();
    if (!token) {
      this.halt("refused", t("wsl.signed_out"));
      return;
    }
    const exp = claimsOf(token)?.exp;
    this.tokenExpiresAt = typeof exp === "number" ? exp : null;
    const viewing = await createViewing(token, this.o.cameraId);
    if (abort.signal.aborted) return;
    if (!viewing.ok) {
      this.refusedBy(viewing.failure);
      return;
    }
    let response: Response;
    try {
      response = await fetch(relayUrl()! + viewing.data.stream, {
        headers: { Authorization: `Bearer ${viewing.data.grant}` },
        signal: abort.signal,
        cache: "no-store",
      });
    } catch {
      if (!abort.signal.aborted) this.halt("failed", t("wsl.network"));
      return;
    }
    if (!response.ok || !response.body) {
      this.refusedBy(await relayFailure(response));
      return;
    }
    const type = response.headers.get("Content-Type") ?? "";
    await this.playStream(response.body, /codecs=/.test(type) && MediaSource.isTypeSupported(type) ? type : DEFAULT_TYPE, abort);
  }

  private refusedBy(f: RelayFailure): void {
    if (f.kind === "no-open-window" || f.kind === "window-ended") {
      this.windowEnded = true;
      this.halt("ended");
    } else if (f.kind === "token-expired") {
      // Refused when asked (401): the token is no good, the session has ended; at the stream (403): it expired
      // meanwhile, and Play asks again with a renewed one.
      if (f.status === 401) this.halt("refused", t("wsl.signed_out"));
      else this.halt("expired");
    } else if (f.kind === "agent-offline" || f.kind === "agent-timeout") {
      this.halt("offline");
    } else if (f.status === 0 || f.retryable || f.status === 429) {
      this.halt("failed", t("wsl.retry"));
    } else {
      this.halt("refused", failureText(f));
    }
  }

  private async playStream(body: ReadableStream<Uint8Array<ArrayBuffer>>, type: string, abort: AbortController): Promise<void> {
    const source = new MediaSource();
    this.objectUrl = URL.createObjectURL(source);
    this.video.src = this.objectUrl;
    await new Promise<void>((resolve) => source.addEventListener("sourceopen", () => resolve(), { once: true }));
    const buffer = source.addSourceBuffer(type);
    const appended = () => new Promise<void>((resolve) => buffer.addEventListener("updateend", () => resolve(), { once: true }));
    const reader = body.getReader();
    abort.signal.addEventListener("abort", () => void reader.cancel().catch(() => undefined));
    this.video.addEventListener(
      "playing",
      () => {
        if (this.abort === abort && this.state === "connecting") this.set("live");
      },
      { once: true },
    );
    let started = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (abort.signal.aborted) return;
        buffer.appendBuffer(value);
        await appended();
        const ranges = buffer.buffered;
        if (!ranges.length) continue;
        const start = ranges.start(0);
        const end = ranges.end(ranges.length - 1);
        if (!started) {
          // The viewer joins a stream already under way: its first picture is not at time 0.
          started = true;
          this.video.currentTime = start;
          void this.video.play().catch(() => undefined);
        } else if (this.state === "live" && end - this.video.currentTime > MAX_LAG_S) {
          this.video.currentTime = end - 0.5; // back to the live edge
        }
        if (this.video.currentTime - start > KEEP_S * 2) {
          buffer.remove(start, this.video.currentTime - KEEP_S);
          await appended();
        }
      }
    } catch {
      if (abort.signal.aborted || this.abort !== abort) return;
      this.halt("failed", t("wsl.network"));
      return;
    }
    if (abort.signal.aborted || this.abort !== abort) return;
    // The relay ended the stream: the window ended, the viewing's token expired, or the owner's site went
    // offline. Which one is asked, and the grant is not used again.
    const open = await this.o.windowOpen();
    if (this.abort !== abort) return;
    if (open === false) {
      this.windowClosed();
      return;
    }
    const why = streamEndedBy(this.tokenExpiresAt, Date.now() / 1000);
    if (why === "expired") {
      // The portal renews its token before it expires: the camera goes on under a new viewing asked with the
      // renewed token (which the relay decides anew), without a press of Play.
      const token = await staffToken();
      const exp = token ? claimsOf(token)?.exp : null;
      if (this.abort !== abort) return;
      if (continuesWith(this.tokenExpiresAt, typeof exp === "number" ? exp : null, Date.now() / 1000)) {
        this.teardown();
        await this.start();
        return;
      }
    }
    this.halt(why);
  }

  private togglePause(): void {
    if (this.state === "live") {
      this.video.pause();
      this.set("paused");
    } else if (this.state === "paused") {
      // Back to the newest video, not where it was paused.
      const ranges = this.video.buffered;
      if (ranges.length) this.video.currentTime = Math.max(ranges.start(0), ranges.end(ranges.length - 1) - 0.5);
      void this.video.play().catch(() => undefined);
      this.set("live");
    }
  }

  /** Ends the viewing (the stream's response is closed: the relay records its end) and shows `state`. */
  /** The current viewing's request aborted and its video let go of. */
  private teardown(): void {
    const abort = this.abort;
    this.abort = null;
    abort?.abort();
    this.video.pause();
    this.video.removeAttribute("src");
    this.video.load();
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = null;
  }

  halt(state: PlayerState, detail: string | null = null): void {
    const hadFocus = this.element.contains(document.activeElement);
    this.teardown();
    this.set(state, detail);
    // The button that had the focus may be hidden now: the focus goes to the one that starts again, or the status.
    const active = document.activeElement as HTMLElement | null;
    if (hadFocus && (!active || active === document.body || active.hidden)) {
      if (!this.play.hidden) this.play.focus();
      else focus(this.status);
    }
  }
}
