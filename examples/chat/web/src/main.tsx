// The Convex deployment is the page's own origin: the dev server serves this
// build (`--static`) at the same address as its API and sync socket.
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { ConvexProvider, ConvexReactClient } from "convex/react";
import { App } from "./App";

const convex = new ConvexReactClient(window.location.origin, {
  skipConvexDeploymentUrlCheck: true,
});

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <ConvexProvider client={convex}>
      <App />
    </ConvexProvider>
  </StrictMode>,
);
