/** The two HTML documents: the page shell that loads the bundle, and the token login form. */

export function shellPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>airtasks</title><link rel="stylesheet" href="/assets/app.css"></head>
<body><div id="app"></div><script type="module" src="/assets/app.js"></script></body></html>
`;
}

export function loginPage(failed: boolean): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>airtasks — sign in</title><link rel="stylesheet" href="/assets/app.css"></head>
<body><main class="login"><h1>airtasks</h1>
<form method="post" action="/login"><label>Token <input type="password" name="token" autofocus autocomplete="current-password"></label>
<button type="submit">Sign in</button></form>
${failed ? '<p class="error">Wrong token.</p>' : ''}
<p class="muted">The token is the server's --token (or AIRTASKS_WEB_TOKEN).</p></main></body></html>
`;
}
