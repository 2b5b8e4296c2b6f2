/** A path the portal does not have. */

import { h } from "../dom";
import { t } from "../i18n";

export function notFoundPage(main: HTMLElement): void {
  main.append(h("h1", {}, t("notfound.title")), h("p", {}, h("a", { href: "/" }, t("notfound.home"))));
}
