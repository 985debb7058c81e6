-- Realised profit and loss an event reports (issue 19: maxDailyLoss), a signed decimal text.
ALTER TABLE events ADD COLUMN pnl TEXT;
