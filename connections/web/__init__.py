"""The connect web app (`screensync serve-web`): OAuth and widget connect flows, webhook receiver."""
