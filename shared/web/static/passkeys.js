// Passkey forms (console registration, sign-in at the provider). WebAuthn is reachable only
// from JavaScript, so these forms stay hidden without it; everything else works without.
// A form marked data-passkey="register" or "sign-in" fetches its options (POST data-options,
// with the form's csrf field), runs the ceremony, puts the credential's JSON in its `response`
// field, and submits itself as an ordinary form.
for (const form of document.querySelectorAll('form[data-passkey]')) {
  if (!window.PublicKeyCredential || !PublicKeyCredential.parseCreationOptionsFromJSON) continue;
  form.hidden = false;
  const status = form.querySelector('[data-passkey-status]');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (status) status.textContent = 'Waiting for your passkey…';
    try {
      const body = new URLSearchParams({ csrf: form.elements.csrf.value });
      const res = await fetch(form.dataset.options, { method: 'POST', body, credentials: 'same-origin' });
      if (!res.ok) throw new Error(`the server answered ${res.status}`);
      const options = await res.json();
      const credential =
        form.dataset.passkey === 'register'
          ? await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) })
          : await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) });
      form.elements.response.value = JSON.stringify(credential.toJSON());
      form.submit();
    } catch (err) {
      if (status) status.textContent = `No passkey was used (${err.message}). Try again.`;
    }
  });
}
