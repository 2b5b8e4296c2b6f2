/** One camera's details, all optional: a label, where it points and how wide it sees (drawn as a wedge on the
 * map; a tap on the map turns it toward that place, and the turn buttons do it from the keyboard), how far, how
 * many days of footage it keeps, indoor or outdoor. Adding, changing and removing send If-Match. */

import { attempt, bearer, ifMatch, registry, type Camera } from "../api/client";
import { h } from "../dom";
import { errorsFromFailure, showErrors, textField } from "../forms";
import { t } from "../i18n";
import { createMap, type PortalMap } from "../map";
import { loadOwned, refused } from "../owner";
import { whenConnected } from "../place";
import { navigate, onLeave } from "../router";
import { bearing } from "../wedge";
import { registrationNotice } from "./registration";

interface Draft {
  label: string;
  direction: string;
  fov: string;
  range: string;
  retention: string;
  placement: "" | "indoor" | "outdoor";
  live: "never" | "on_alert" | "emergency";
  endpoint: string;
}

const drafts = new Map<string, Draft>();

const FIELDS: Record<string, string> = {
  "/body/label": "cam-label",
  "/body/direction_deg": "cam-direction",
  "/body/fov_deg": "cam-fov",
  "/body/range_m": "cam-range",
  "/body/retention_days": "cam-retention",
  "/body/placement": "cam-placement",
  "/body/live_mode": "cam-live",
  "/body/live_endpoint": "cam-endpoint",
};

function draftOf(camera: Camera | null): Draft {
  return {
    label: camera?.label ?? "",
    direction: camera?.direction_deg != null ? String(camera.direction_deg) : "",
    fov: camera?.fov_deg != null ? String(camera.fov_deg) : "",
    range: camera?.range_m != null ? String(camera.range_m) : "",
    retention: camera?.retention_days != null ? String(camera.retention_days) : "",
    placement: camera?.placement ?? "",
    live: camera?.live_mode ?? "never",
    endpoint: camera?.live_endpoint ?? "",
  };
}

const numberOrNull = (v: string): number | null => {
  const trimmed = v.trim();
  if (!trimmed) return null;
  const n = Number(trimmed.replace(",", "."));
  return Number.isFinite(n) ? n : NaN;
};

export async function cameraPage(main: HTMLElement, params: Record<string, string>): Promise<void> {
  const id = params.id!;
  const cameraId = params.camera === "new" ? null : params.camera!;
  const owned = await loadOwned(main, id);
  if (!owned) return;
  const p = owned.registration.properties;
  const index = cameraId ? p.cameras.findIndex((c) => c.id === cameraId) : p.cameras.length;
  const camera = cameraId ? (p.cameras[index] ?? null) : null;
  if (cameraId && !camera) {
    navigate(`/registrations/${id}`, true);
    return;
  }
  const key = `${id}/${cameraId ?? "new"}`;
  const d = drafts.get(key) ?? draftOf(camera);
  drafts.set(key, d);
  const [lon, lat] = (camera?.location.coordinates ?? owned.registration.geometry.coordinates) as [number, number];
  const labels = {
    "cam-label": t("camera.label"),
    "cam-direction": t("camera.direction"),
    "cam-fov": t("camera.fov"),
    "cam-range": t("camera.range"),
    "cam-retention": t("camera.retention"),
    "cam-placement": t("camera.placement"),
    "cam-live": t("camera.live"),
    "cam-endpoint": t("camera.endpoint"),
  };
  const summary = h("div", { class: "error-summary-host" });
  let map: PortalMap | null = null;
  const redraw = () => {
    const direction = numberOrNull(d.direction);
    const fov = numberOrNull(d.fov);
    const range = numberOrNull(d.range);
    map?.showCameras(
      [
        {
          id: camera?.id ?? "new",
          location: { type: "Point", coordinates: [lon, lat] },
          direction_deg: direction != null && !Number.isNaN(direction) ? direction : null,
          fov_deg: direction != null && !Number.isNaN(direction) ? (fov && !Number.isNaN(fov) ? fov : 90) : null,
          range_m: range && !Number.isNaN(range) ? range : null,
        },
      ],
      false,
    );
  };
  const field = (id2: keyof typeof labels, member: "label" | "direction" | "fov" | "range" | "retention", hint: string, width = "small") =>
    textField({
      id: id2,
      label: labels[id2],
      hint,
      value: d[member],
      inputmode: member === "label" ? undefined : "numeric",
      width: member === "label" ? undefined : width,
      optional: true,
      onInput: (v) => {
        d[member] = v;
        redraw();
      },
    });
  const directionField = field("cam-direction", "direction", t("camera.direction_hint"));
  const directionInput = directionField.querySelector("input")!;
  const turn = (by: number) => {
    const current = numberOrNull(d.direction);
    const next = ((((current == null || Number.isNaN(current) ? 0 : current) + by) % 360) + 360) % 360;
    d.direction = String(Math.round(next));
    directionInput.value = d.direction;
    status.textContent = t("camera.facing", { deg: d.direction });
    redraw();
  };
  const status = h("p", { class: "usa-hint", role: "status" });
  const placement = h(
    "fieldset",
    { class: "usa-fieldset usa-form-group", "data-field": "cam-placement" },
    h("legend", { class: "usa-legend" }, labels["cam-placement"], h("span", { class: "usa-hint" }, ` ${t("form.optional")}`)),
    (["outdoor", "indoor"] as const).map((value, i) => {
      const input = h("input", {
        class: "usa-radio__input",
        type: "radio",
        name: "cam-placement",
        id: i === 0 ? "cam-placement" : `cam-placement-${value}`,
        value,
        onchange: () => (d.placement = value),
      });
      input.checked = d.placement === value;
      return h(
        "div",
        { class: "usa-radio" },
        input,
        h("label", { class: "usa-radio__label", for: input.id }, t(`camera.${value}`)),
      );
    }),
  );
  const live = h(
    "fieldset",
    { class: "usa-fieldset usa-form-group", "data-field": "cam-live" },
    h("legend", { class: "usa-legend" }, labels["cam-live"]),
    (["never", "on_alert", "emergency"] as const).map((value, i) => {
      const input = h("input", {
        class: "usa-radio__input",
        type: "radio",
        name: "cam-live",
        id: i === 0 ? "cam-live" : `cam-live-${value}`,
        value,
        onchange: () => (d.live = value),
      });
      input.checked = d.live === value;
      return h("div", { class: "usa-radio" }, input, h("label", { class: "usa-radio__label", for: input.id }, t(`camera.live_${value}`)));
    }),
  );
  const endpoint = textField({
    id: "cam-endpoint",
    label: labels["cam-endpoint"],
    hint: t("camera.endpoint_hint"),
    value: d.endpoint,
    type: "url",
    optional: true,
    onInput: (v) => (d.endpoint = v),
  });
  const mapBox = h("div", { class: "portal-map-box" });
  const submit = h("button", { type: "submit", class: "usa-button" }, cameraId ? t("camera.save") : t("camera.add"));
  const form = h(
    "form",
    { class: "usa-form usa-form--large", novalidate: true },
    field("cam-label", "label", t("camera.label_hint")),
    h("p", { class: "usa-hint" }, t("camera.map_hint")),
    mapBox,
    directionField,
    h(
      "div",
      { class: "portal-actions" },
      h("button", { type: "button", class: "usa-button usa-button--outline", onclick: () => turn(-15) }, t("camera.turn_left")),
      h("button", { type: "button", class: "usa-button usa-button--outline", onclick: () => turn(15) }, t("camera.turn_right")),
    ),
    status,
    field("cam-fov", "fov", t("camera.fov_hint")),
    field("cam-range", "range", t("camera.range_hint")),
    field("cam-retention", "retention", t("camera.retention_hint")),
    placement,
    live,
    endpoint,
    h(
      "div",
      { class: "portal-actions" },
      submit,
      h("a", { class: "usa-button usa-button--unstyled", href: `/registrations/${id}` }, t("edit.cancel")),
    ),
  );

  const body = () => {
    const n = {
      direction_deg: numberOrNull(d.direction),
      fov_deg: numberOrNull(d.fov),
      range_m: numberOrNull(d.range),
      retention_days: numberOrNull(d.retention),
    };
    const bad = (Object.entries(n) as [keyof typeof n, number | null][]).filter(([, v]) => v != null && Number.isNaN(v));
    return { n, bad };
  };

  const send = async () => {
    const { n, bad } = body();
    if (bad.length) {
      const ids: Record<string, string> = { direction_deg: "cam-direction", fov_deg: "cam-fov", range_m: "cam-range", retention_days: "cam-retention" };
      showErrors(form, summary, bad.map(([k]) => ({ field: ids[k]!, message: t("camera.error_number", { field: labels[ids[k] as keyof typeof labels] }) })));
      return;
    }
    const values = {
      label: d.label.trim() || null,
      direction_deg: n.direction_deg,
      fov_deg: n.fov_deg ?? (n.direction_deg != null ? 90 : null),
      range_m: n.range_m,
      retention_days: n.retention_days,
      placement: d.placement || null,
      live_mode: d.live,
      live_endpoint: d.endpoint.trim() || null,
    };
    submit.disabled = true;
    const outcome = cameraId
      ? await attempt(() =>
          registry().PATCH("/v1/registrations/{registration_id}/cameras/{camera_id}", {
            params: { path: { registration_id: id, camera_id: cameraId }, header: ifMatch(p.version) },
            headers: bearer(owned.credential),
            body: values,
          }),
        )
      : await attempt(() =>
          registry().POST("/v1/registrations/{registration_id}/cameras", {
            params: { path: { registration_id: id }, header: ifMatch(p.version) },
            headers: bearer(owned.credential),
            body: values,
          }),
        );
    submit.disabled = false;
    if (!outcome.ok) {
      if (refused(id, outcome.failure)) return;
      const f = outcome.failure;
      const errors = f.status === 412 ? [{ field: null, message: t("errors.changed_elsewhere") }] : errorsFromFailure(f, FIELDS, labels);
      showErrors(form, summary, errors, f.retryable ? () => void send() : undefined);
      return;
    }
    drafts.delete(key);
    registrationNotice.text = cameraId ? t("camera.saved") : t("camera.added");
    navigate(`/registrations/${id}`);
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void send();
  });

  const remove = async () => {
    const outcome = await attempt(() =>
      registry().DELETE("/v1/registrations/{registration_id}/cameras/{camera_id}", {
        params: { path: { registration_id: id, camera_id: cameraId! }, header: ifMatch(p.version) },
        headers: bearer(owned.credential),
      }),
    );
    if (!outcome.ok) {
      if (refused(id, outcome.failure)) return;
      const f = outcome.failure;
      const errors = f.status === 412 ? [{ field: null, message: t("errors.changed_elsewhere") }] : errorsFromFailure(f, {});
      showErrors(form, summary, errors, f.retryable ? () => void remove() : undefined);
      return;
    }
    drafts.delete(key);
    registrationNotice.text = t("camera.removed");
    navigate(`/registrations/${id}`);
  };

  main.append(
    h("h1", {}, cameraId ? t("camera.title_n", { n: index + 1 }) : t("camera.title_new")),
    h("p", { class: "usa-intro" }, t("camera.intro")),
    summary,
    form,
    cameraId && p.cameras.length > 1
      ? h(
          "div",
          {},
          h("h2", {}, t("camera.remove_title")),
          h("button", { type: "button", class: "usa-button usa-button--secondary", onclick: () => void remove() }, t("camera.remove")),
        )
      : "",
  );
  whenConnected(mapBox, () => {
    map = createMap(mapBox, {
      onPick: (toLat, toLon) => {
        d.direction = String(bearing(lat, lon, toLat, toLon));
        directionInput.value = d.direction;
        status.textContent = t("camera.facing", { deg: d.direction });
        redraw();
      },
    });
    onLeave(() => map?.destroy());
    map.setPin(lat, lon, false);
    map.showCameras([{ id: "x", location: { type: "Point", coordinates: [lon, lat] } }]);
    redraw();
  });
}
