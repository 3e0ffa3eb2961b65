mod content;
mod delivery;
mod helpers;
mod registration;
mod webhook;
