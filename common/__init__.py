"""Small primitives shared by every app. Imports no app and no project configuration."""
