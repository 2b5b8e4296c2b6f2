/** "Where?": the place a resident gives — a tap on the map, the browser's location, or typed coordinates (the
 * map is never the only way) — and the programs that cover it. What was given stays in memory while the
 * resident moves between "Am I covered?" and "Register", so nothing is asked twice. */

import { attempt, registry, type Agency, type Failure } from "./api/client";
import { h, uid } from "./dom";
import { errorNodes, errorsFromFailure, textField } from "./forms";
import { t } from "./i18n";
import { createMap, type PortalMap } from "./map";
import { config } from "./config";
import { coverageHref } from "./coverage";
import { geocode } from "./geocoder";
import { onLeave } from "./router";

export interface Place {
  address: string; // what was typed for the geocoder (never sent to a Canvass service)
  lat: string;
  lon: string;
  agencies: Agency[] | null; // null: not checked yet
  chosen: string | null; // the program's slug the resident registers with
}

export const place: Place = { address: "", lat: "", lon: "", agencies: null, chosen: null };

export function coordinates(p: Pick<Place, "lat" | "lon"> = place): { lat: number; lon: number } | null {
  const lat = Number(p.lat.trim().replace(",", "."));
  const lon = Number(p.lon.trim().replace(",", "."));
  if (!p.lat.trim() || !p.lon.trim() || !Number.isFinite(lat) || !Number.isFinite(lon)) return null;
  if (Math.abs(lat) > 90 || Math.abs(lon) > 180) return null;
  return { lat, lon };
}

interface PickerOptions {
  idPrefix: string;
  choose: boolean; // offer a choice between the covering programs (the register page)
  onChange?: () => void;
  state?: Place; // where what was given is kept: the resident's place (shared by the pages that ask it) by default
  coverage?: boolean; // find the programs that cover the place (default); a tip's place needs only its point
  locate?: boolean; // offer the browser's location (default); not where the place may be the tipster's own
  hint?: string; // what the picker asks for, instead of "your place"
}

/** The picker: map, "use my location", coordinates, and the covering programs, announced as they change. */
export function placePicker(o: PickerOptions): HTMLElement {
  const p = o.state ?? place;
  const coverage = o.coverage ?? true;
  const latId = `${o.idPrefix}-lat`;
  const lonId = `${o.idPrefix}-lon`;
  // What changes is announced (the status: covered or not, by whom); the programs' privacy notices, which may be
  // long, are shown beside it without being read out whole on every change.
  const status = h("div", { "aria-live": "polite" });
  const notices = h("div", { class: "place-result__notices" });
  const result = h("div", { class: "place-result" }, status, notices);
  const mapBox = h("div", { class: "portal-map-box" });
  let map: PortalMap | null = null;

  const latField = textField({
    id: latId,
    label: t("place.lat"),
    value: p.lat,
    inputmode: "decimal",
    width: "medium",
    onInput: (v) => {
      p.lat = v;
      p.agencies = null;
    },
  });
  const lonField = textField({
    id: lonId,
    label: t("place.lon"),
    value: p.lon,
    inputmode: "decimal",
    width: "medium",
    onInput: (v) => {
      p.lon = v;
      p.agencies = null;
    },
  });
  const setInputs = () => {
    (latField.querySelector("input") as HTMLInputElement).value = p.lat;
    (lonField.querySelector("input") as HTMLInputElement).value = p.lon;
  };

  const showResult = (message?: string) => {
    status.replaceChildren();
    notices.replaceChildren();
    if (message) {
      status.append(h("p", { class: "usa-hint" }, message));
      return;
    }
    if (p.agencies === null) return;
    if (!p.agencies.length) {
      status.append(
        h(
          "div",
          { class: "usa-alert usa-alert--warning usa-alert--slim" },
          h("div", { class: "usa-alert__body" }, h("p", { class: "usa-alert__text" }, t("place.not_covered"))),
        ),
      );
      return;
    }
    if (!o.choose) {
      notices.append(
        ...p.agencies.flatMap((a) => [
          privacyNotice(a),
          h("p", { class: "cov-link" }, h("a", { class: "usa-link", href: coverageHref(a.properties.slug) }, t("cov.link", { name: a.properties.name }))),
        ]),
      );
      status.append(
        h(
          "div",
          { class: "usa-alert usa-alert--success usa-alert--slim" },
          h(
            "div",
            { class: "usa-alert__body" },
            h("p", { class: "usa-alert__text" }, t("place.covered_by")),
            h(
              "ul",
              { class: "usa-list" },
              p.agencies.map((a) => h("li", {}, a.properties.name)),
            ),
          ),
        ),
      );
      return;
    }
    if (p.agencies.length === 1) p.chosen = p.agencies[0]!.properties.slug;
    if (!p.agencies.some((a) => a.properties.slug === p.chosen)) p.chosen = null;
    const name = `${o.idPrefix}-program`;
    status.append(
      h(
        "fieldset",
        { class: "usa-fieldset usa-form-group", "data-field": `${o.idPrefix}-program` },
        h("legend", { class: "usa-legend" }, t("place.program")),
        p.agencies.map((a, i) => {
          const id = i === 0 ? `${o.idPrefix}-program` : uid(`${o.idPrefix}-program`);
          const input = h("input", {
            class: "usa-radio__input usa-radio__input--tile",
            type: "radio",
            id,
            name,
            value: a.properties.slug,
            onchange: () => {
              p.chosen = a.properties.slug;
            },
          });
          input.checked = p.chosen === a.properties.slug;
          return h(
            "div",
            { class: "usa-radio" },
            input,
            h("label", { class: "usa-radio__label", for: id }, a.properties.name),
            privacyNotice(a, true),
          );
        }),
      ),
    );
  };

  const check = async () => {
    const c = coordinates(p);
    if (!c) {
      showResult(t("place.invalid"));
      return;
    }
    map?.setPin(c.lat, c.lon);
    if (!coverage) {
      showResult();
      o.onChange?.();
      return;
    }
    showResult(t("place.checking"));
    const outcome = await attempt(() =>
      registry().GET("/v1/agencies/covering", { params: { query: { lat: c.lat, lon: c.lon } } }),
    );
    if (!outcome.ok) {
      p.agencies = null;
      showFailure(outcome.failure);
      return;
    }
    p.agencies = outcome.data.features;
    map?.showAgencies(p.agencies, false);
    showResult();
    o.onChange?.();
  };

  const showFailure = (failure: Failure) => {
    notices.replaceChildren();
    status.replaceChildren(
      h(
        "div",
        { class: "usa-alert usa-alert--error usa-alert--slim" },
        h(
          "div",
          { class: "usa-alert__body" },
          errorsFromFailure(failure, {}).map((e) => h("p", { class: "usa-alert__text" }, ...errorNodes(e))),
          failure.retryable
            ? h("button", { type: "button", class: "usa-button usa-button--outline", onclick: () => void check() }, t("errors.retry"))
            : null,
        ),
      ),
    );
  };

  const pick = (lat: number, lon: number) => {
    p.lat = lat.toFixed(6);
    p.lon = lon.toFixed(6);
    setInputs();
    void check();
  };

  const locate = h(
    "button",
    {
      type: "button",
      class: "usa-button usa-button--outline",
      onclick: () => {
        if (!("geolocation" in navigator)) {
          showResult(t("place.no_geolocation"));
          return;
        }
        showResult(t("place.locating"));
        navigator.geolocation.getCurrentPosition(
          (pos) => pick(pos.coords.latitude, pos.coords.longitude),
          () => showResult(t("place.geolocation_failed")),
          { timeout: 15000 },
        );
      },
    },
    t("place.use_location"),
  );

  const addressId = `${o.idPrefix}-address`;
  const found = h("div", { class: "place-found", "aria-live": "polite" });
  const search = async () => {
    const query = p.address.trim();
    if (!query) {
      found.replaceChildren(h("p", { class: "usa-hint" }, t("place.address_empty")));
      return;
    }
    found.replaceChildren(h("p", { class: "usa-hint" }, t("place.searching")));
    const results = await geocode(query);
    if (results === null) {
      found.replaceChildren(h("p", { class: "usa-hint" }, t("place.address_failed")));
      return;
    }
    if (!results.length) {
      found.replaceChildren(h("p", { class: "usa-hint" }, t("place.address_none")));
      return;
    }
    found.replaceChildren(
      h("p", { class: "usa-hint" }, t("place.address_pick")),
      h(
        "ul",
        { class: "usa-list usa-list--unstyled" },
        results.map((r) =>
          h(
            "li",
            {},
            h(
              "button",
              {
                type: "button",
                class: "usa-button usa-button--unstyled place-found__item",
                onclick: () => {
                  found.replaceChildren();
                  pick(r.lat, r.lon);
                },
              },
              r.name,
            ),
          ),
        ),
      ),
    );
  };
  const addressInput = textField({
    id: addressId,
    label: t("place.address"),
    value: p.address,
    autocomplete: "street-address",
    onInput: (v) => (p.address = v),
  });
  addressInput.querySelector("input")!.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault(); // finds the address instead of sending the whole form
      void search();
    }
  });
  const addressBox = config().geocoder_url
    ? h(
        "div",
        { class: "place-picker__address" },
        addressInput,
        h("button", { type: "button", class: "usa-button usa-button--outline", onclick: () => void search() }, t("place.find")),
        found,
      )
    : "";
  const element = h(
    "div",
    { class: "place-picker" },
    h("p", { class: "usa-hint", id: `${o.idPrefix}-map-hint` }, o.hint ?? (config().geocoder_url ? t("place.map_hint_address") : t("place.map_hint"))),
    addressBox,
    mapBox,
    o.locate === false ? "" : h("div", { class: "place-picker__locate" }, locate),
    h(
      "fieldset",
      { class: "usa-fieldset place-picker__coords" },
      h("legend", { class: "usa-legend" }, t("place.coords_legend")),
      h("div", { class: "place-picker__row" }, latField, lonField),
      h(
        "button",
        { type: "button", class: "usa-button usa-button--outline", onclick: () => void check() },
        t("place.check"),
      ),
    ),
    result,
  );

  // The map is drawn once its box is in the page (Leaflet measures it).
  whenConnected(mapBox, () => {
    map = createMap(mapBox, { onPick: pick });
    onLeave(() => map?.destroy());
    const c = coordinates(p);
    if (c) map.setPin(c.lat, c.lon);
    if (p.agencies) {
      map.showAgencies(p.agencies, !c);
      showResult();
    } else if (c) {
      void check();
    } else {
      showOverview(map, p);
    }
  });
  return element;
}

// The overview's boundaries are simplified to about a pixel of the map as it is shown (GET /v1/agencies'
// `simplify`, in metres): a statewide deployment's boundaries whole are megabytes a phone need not download to
// see where the programs are. Tolerances are powers of two metres (the same few answers for every resident), and
// never finer than OVERVIEW_FINEST_M: zoomed in further, the resident is about to give their place, and the
// programs covering it are then read with their boundaries as stored. Which programs cover a place is always
// asked of the service by its point (`check`), never decided from what the overview draws.
const OVERVIEW_FINEST_M = 32;
const OVERVIEW_COARSEST_M = 65_536; // within the service's bound (100 km)

/** The tolerance, in metres, for boundaries drawn on a map whose pixel spans `metresPerPixel`. */
function overviewTolerance(metresPerPixel: number): number {
  const m = Math.min(Math.max(metresPerPixel, OVERVIEW_FINEST_M), OVERVIEW_COARSEST_M);
  return 2 ** Math.floor(Math.log2(m));
}

/** Draws the programs (the first hundred) on a map where no place is given yet, fitted to them, and reads them
 * again finer when a zoom makes a pixel less than half the tolerance they were read at. */
function showOverview(map: PortalMap, p: Place): void {
  let asked = Infinity; // the tolerance last asked for: only its answer is drawn
  let fitted = false;
  const given = () => p.agencies !== null || coordinates(p) !== null;
  const load = () => {
    const simplify = overviewTolerance(map.metresPerPixel());
    if (given() || simplify >= asked) return;
    asked = simplify;
    void attempt(() => registry().GET("/v1/agencies", { params: { query: { limit: 100, simplify } } })).then((o) => {
      if (!o.ok || given() || simplify !== asked) return;
      const fit = !fitted;
      fitted = true;
      map.showAgencies(o.data.features, fit);
    });
  };
  map.onZoom(() => {
    if (map.metresPerPixel() < asked / 2) load();
  });
  load();
}

/** A program's privacy notice as the agency published it: its text (plain text, line breaks kept) and/or a link to
 * it; `brief` folds the text away behind its title (the register page's choice of program). */
export function privacyNotice(a: Agency, brief = false): HTMLElement {
  const { name, privacy_notice: text, privacy_notice_url: url } = a.properties;
  // The contract allows only https links; anything else is not made a link.
  const link =
    url && url.startsWith("https://")
      ? h("p", {}, h("a", { class: "usa-link", href: url, rel: "noreferrer" }, t("place.privacy_link", { name })))
      : null;
  const body = text ? h("p", { class: "privacy-notice__text" }, text) : null;
  if (!body && !link) return h("p", { class: "usa-hint privacy-notice" }, t("place.privacy_none", { name }));
  if (brief) {
    return body
      ? h("details", { class: "privacy-notice" }, h("summary", {}, t("place.privacy_title", { name })), body, link)
      : h("div", { class: "privacy-notice" }, link);
  }
  return h("section", { class: "privacy-notice" }, h("h2", {}, t("place.privacy_title", { name })), body, link);
}

/** Runs `fn` once `el` is in the document (the caller appends it right after building it). */
export function whenConnected(el: HTMLElement, fn: () => void): void {
  if (el.isConnected) {
    fn();
    return;
  }
  requestAnimationFrame(() => whenConnected(el, fn));
}
