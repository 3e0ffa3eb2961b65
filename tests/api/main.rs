mod content;
mod delivery;
mod health;
mod helpers;
mod lifecycle;
mod registration;
mod webhook;
