"""Flask-Admin pages of the process tracker: the job list, detail and "My jobs" (views.py), the
statistics and queue health pages (statistics.py), and their place in the menu (menu.py)."""
