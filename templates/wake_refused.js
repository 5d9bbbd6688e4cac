// The page of a refused wake (the cool-down or the rate limit): counts the wait down and then
// sends the wake again by itself. Without this script a meta refresh takes the visitor back to
// the page with the wake button after the same wait.
"use strict";

(function () {
  document.addEventListener("DOMContentLoaded", () => {
    const countdown = document.querySelector('[data-field="countdown"]');
    const form = document.querySelector('[data-role="retry-form"]');
    if (!countdown || !form) return;
    const due = Date.now() + Number(countdown.dataset.seconds || 0) * 1000;
    const tick = () => {
      const left = (due - Date.now()) / 1000;
      if (left <= 0) {
        countdown.textContent = "now";
        form.submit();
        return;
      }
      countdown.textContent = Unshelver.duration(Math.ceil(left));
      setTimeout(tick, 250);
    };
    tick();
  });
})();
