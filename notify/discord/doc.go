// Package discord tells a Discord channel about runs through a webhook.
//
// Each run has one live message, posted when the run starts and edited as its
// steps progress (a line per step, coloured by the run's state). A run that
// fails posts a separate failure embed (pinging the configured mention, and
// only it); a run that succeeds or is cancelled posts a short completion
// embed. Step events never block: they mark the run dirty and a background
// worker (Notifier.Run) coalesces them into edits rendered from the ledger.
// Final events are sent synchronously within a bounded budget and deduplicated
// through Run.Notes, so duplicates and retries never post twice.
//
// discordgo's endpoints are fixed at discord.com; a transport sends every
// request to the configured webhook URL instead, and discordgo's own rate
// limiter (which sleeps without a context) is bypassed in favour of bounded,
// context-aware retries honouring retry_after.
package discord
