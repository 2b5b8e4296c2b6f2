/** "Am I covered?": the resident gives a place and sees the programs that cover it, then goes on to register. */

import { h } from "../dom";
import { t } from "../i18n";
import { placePicker } from "../place";

export function coveredPage(main: HTMLElement): void {
  main.append(
    h("h1", {}, t("covered.title")),
    h("p", { class: "usa-intro" }, t("covered.intro")),
    placePicker({ idPrefix: "covered", choose: false }),
    h(
      "div",
      { class: "portal-actions" },
      h("a", { class: "usa-button", href: "/register" }, t("covered.register")),
      h("a", { class: "usa-button usa-button--outline", href: "/sign-in" }, t("covered.manage")),
    ),
    h("h2", {}, t("covered.what_title")),
    h(
      "ul",
      { class: "usa-list" },
      h("li", {}, t("covered.what_1")),
      h("li", {}, t("covered.what_2")),
      h("li", {}, t("covered.what_3")),
    ),
  );
}
