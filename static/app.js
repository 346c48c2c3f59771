// Progressive enhancement only: every page works without JavaScript.
document.addEventListener("click", (event) => {
  const button = event.target.closest(".flash-dismiss");
  if (button) button.parentElement.remove();
});
