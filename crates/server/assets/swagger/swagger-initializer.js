// Starts Swagger UI on the service's own OpenAPI document. A file rather
// than an inline script, so the page's Content-Security-Policy can forbid
// inline scripts. validatorUrl: null keeps the browser from asking
// validator.swagger.io for a badge: nothing is fetched from elsewhere.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    persistAuthorization: false,
    tryItOutEnabled: false,
  });
});
