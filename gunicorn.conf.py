"""gunicorn's settings wherever the web process runs (Procfile, Procfile.dev, dev.py up, the tests): gunicorn
reads this file from the folder it starts in. Its own lines come out as JSON, like the app's."""

from fulfillment.logs import gunicorn_logconfig

logconfig_dict = gunicorn_logconfig()
