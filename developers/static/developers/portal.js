// Copy buttons: <button type="button" data-copy="#element-id" data-copied="Copied">.
// One delegated listener serves every page. Without a clipboard (old browsers, plain
// http off localhost) the secret stays on the page to select by hand.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button || !navigator.clipboard) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(() => {
    const label = button.textContent;
    button.textContent = button.dataset.copied || label;
    setTimeout(() => { button.textContent = label; }, 2000);
  });
});
