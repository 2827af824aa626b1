"""The login form (Flask-WTF: CSRF token checked on every POST)."""

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField


class LoginForm(FlaskForm):
    login = StringField("Username or email")
    password = PasswordField("Password")
    next = HiddenField()


class LogoutForm(FlaskForm):
    pass
