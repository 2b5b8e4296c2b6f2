/** The public transparency page: each agency's footage requests per ended month, as a table. */

import { attempt, requests } from "../api/client";
import { h } from "../dom";
import { formatMonth, formatNumber, t } from "../i18n";
import { failureBox } from "../owner";
import { rerender } from "../router";
import { agencyNames } from "../agencies";

export async function transparencyPage(main: HTMLElement): Promise<void> {
  main.append(h("h1", {}, t("transparency.title")), h("p", { class: "usa-intro" }, t("transparency.intro")));
  const outcome = await attempt(() => requests().GET("/v1/transparency", { params: { query: { months: 12 } } }));
  if (!outcome.ok) {
    main.append(failureBox(outcome.failure, rerender));
    return;
  }
  const agencies = outcome.data.agencies.filter((a) => a.months.length);
  if (!agencies.length) {
    main.append(h("p", { class: "portal-empty" }, t("transparency.none")));
    return;
  }
  const names = await agencyNames(agencies.map((a) => a.agency));
  const dash = (n: number | null | undefined, digits = 0) => (n == null ? t("transparency.suppressed") : formatNumber(n, digits));
  for (const agency of agencies) {
    const most = Math.max(1, ...agency.months.map((m) => m.owners_contacted));
    // The chart repeats the table's figures for the eye; the table is what assistive technology reads.
    const chart = h(
      "div",
      { class: "portal-chart", "aria-hidden": "true" },
      agency.months.map((m) =>
        h(
          "div",
          { class: "portal-chart__row" },
          h("span", { class: "portal-chart__label" }, formatMonth(m.month, true)),
          h(
            "span",
            { class: "portal-chart__bars" },
            h("span", { class: "portal-chart__bar portal-chart__bar--asked", "data-width": String(Math.round((m.owners_contacted / most) * 100)) }),
            // A suppressed count (fewer than 5 owners asked) draws no bar rather than a false zero.
            m.owners_fulfilled == null
              ? null
              : h("span", { class: "portal-chart__bar portal-chart__bar--shared", "data-width": String(Math.round((m.owners_fulfilled / most) * 100)) }),
          ),
        ),
      ),
    );
    // Widths are set through the CSSOM: the policy allows no inline style attribute.
    chart.querySelectorAll<HTMLElement>("[data-width]").forEach((bar) => (bar.style.width = `${bar.dataset.width}%`));
    main.append(
      h("h2", {}, names.get(agency.agency) ?? agency.agency),
      h("p", { class: "portal-chart__legend", "aria-hidden": "true" },
        h("span", { class: "portal-chart__key portal-chart__bar--asked" }), ` ${t("transparency.contacted")} `,
        h("span", { class: "portal-chart__key portal-chart__bar--shared" }), ` ${t("transparency.fulfilled")}`),
      chart,
      h(
        "div",
        { class: "usa-table-container--scrollable", tabindex: 0, role: "region", "aria-label": t("transparency.caption", { agency: names.get(agency.agency) ?? agency.agency }) },
        h(
          "table",
          { class: "usa-table usa-table--borderless usa-table--stacked" },
          h("caption", {}, t("transparency.caption", { agency: names.get(agency.agency) ?? agency.agency })),
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", { scope: "col" }, t("transparency.month")),
              h("th", { scope: "col" }, t("transparency.sent")),
              h("th", { scope: "col" }, t("transparency.contacted")),
              h("th", { scope: "col" }, t("transparency.fulfilled")),
              h("th", { scope: "col" }, t("transparency.median")),
            ),
          ),
          h(
            "tbody",
            {},
            agency.months.map((m) =>
              h(
                "tr",
                {},
                h("th", { scope: "row", "data-label": t("transparency.month") }, formatMonth(m.month)),
                h("td", { "data-label": t("transparency.sent") }, formatNumber(m.requests_sent)),
                h("td", { "data-label": t("transparency.contacted") }, formatNumber(m.owners_contacted)),
                h("td", { "data-label": t("transparency.fulfilled") }, dash(m.owners_fulfilled)),
                h("td", { "data-label": t("transparency.median") }, dash(m.median_hours_to_share, 1)),
              ),
            ),
          ),
        ),
      ),
    );
  }
  main.append(h("p", { class: "usa-hint" }, t("transparency.note")));
}
