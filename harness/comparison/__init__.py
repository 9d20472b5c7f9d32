"""Judging engines: aligning two schedules, tolerances, noise, waivers, attribution, rankings, and the backtest against what really happened."""
