// Swagger UI for this gateway's own spec; everything is served by the gateway, nothing from a CDN.
window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
});
