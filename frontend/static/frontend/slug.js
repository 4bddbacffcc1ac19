// Fills a slug in from the name (or title) as it is typed, as the server would make one
// (wiki.rendering.to_slug: "Churn Prediction v2!" -> churn-prediction-v2), while the slug
// was left empty: once the user types in the slug, it is theirs. A slug the page came
// with (a [[link]] to a page not written yet) is kept. Without JavaScript, it is typed.
"use strict";
(function () {
  const slugify = (text, max) =>
    text
      .normalize("NFKD")
      .replace(/[\u0300-\u036f]/g, "")
      .toLowerCase()
      .replace(/[^a-z0-9\s_-]/g, "")
      .trim()
      .replace(/[\s_-]+/g, "-")
      .slice(0, max)
      .replace(/^-+|-+$/g, "");

  for (const slug of document.querySelectorAll("input[data-slug-from]")) {
    const source = document.getElementById(slug.dataset.slugFrom);
    if (!source) continue;
    const max = slug.maxLength > 0 ? slug.maxLength : 50;
    let following = slug.value === "";
    slug.addEventListener("input", () => {
      following = slug.value === "";
    });
    source.addEventListener("input", () => {
      if (following) slug.value = slugify(source.value, max);
    });
  }
})();
