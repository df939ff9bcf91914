// "Copy" buttons: <button data-copy="ID" hidden> copies the value of the field ID.
// Shown only when the Clipboard API is there; without it the field stays selectable.
for (const button of document.querySelectorAll("button[data-copy]")) {
  if (!navigator.clipboard) continue;
  button.hidden = false;
  button.addEventListener("click", async () => {
    const field = document.getElementById(button.dataset.copy);
    await navigator.clipboard.writeText(field.value);
    button.textContent = "Copied";
  });
}
