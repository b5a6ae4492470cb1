"""The webhook channel: a contact's webhook URL and signing secret, and the alert's send_webhook."""

import alerts.models
import alerts.validators
from django.db import migrations, models


def give_each_contact_its_secret(apps, schema_editor):
    """A callable default in AddField is called once for the whole table: every existing contact would share
    one secret. Each gets its own here."""
    Contact = apps.get_model("alerts", "Contact")
    for contact in Contact.objects.only("pk").iterator():
        Contact.objects.filter(pk=contact.pk).update(webhook_secret=alerts.models.new_webhook_secret())


class Migration(migrations.Migration):

    dependencies = [
        ('alerts', '0010_delivery_error_code'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='alert',
            name='alert_has_a_channel',
        ),
        migrations.AddField(
            model_name='alert',
            name='send_webhook',
            field=models.BooleanField(default=False, help_text="POST to each recipient's webhook URL (recipients without one get none).", verbose_name='webhook'),
        ),
        migrations.AddField(
            model_name='contact',
            name='webhook_secret',
            field=models.CharField(default='', editable=False, max_length=100),
            preserve_default=False,
        ),
        migrations.RunPython(give_each_contact_its_secret, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='contact',
            name='webhook_secret',
            field=models.CharField(default=alerts.models.new_webhook_secret, editable=False, help_text='The key of the X-Alerting-Signature HMAC on each webhook POST; the receiver checks it.', max_length=100, verbose_name='webhook signing secret'),
        ),
        migrations.AddField(
            model_name='contact',
            name='webhook_url',
            field=models.CharField(blank=True, help_text='Alerts on the webhook channel are POSTed here as signed JSON, e.g. https://hooks.example.com/alerts.', max_length=500, validators=[alerts.validators.validate_webhook_url], verbose_name='webhook URL'),
        ),
        migrations.AlterField(
            model_name='delivery',
            name='address',
            field=models.CharField(blank=True, help_text='The phone number, email address or webhook URL it went to.', max_length=500),
        ),
        migrations.AlterField(
            model_name='delivery',
            name='channel',
            field=models.CharField(choices=[('sms', 'SMS'), ('email', 'Email'), ('webhook', 'Webhook')], max_length=8),
        ),
        migrations.AlterField(
            model_name='delivery',
            name='provider_id',
            field=models.CharField(blank=True, help_text="Twilio's message SID, the email's Message-ID, or the webhook's delivery id.", max_length=100),
        ),
        migrations.AddConstraint(
            model_name='alert',
            constraint=models.CheckConstraint(condition=models.Q(('send_sms', True), ('send_email', True), ('send_webhook', True), _connector='OR'), name='alert_has_a_channel'),
        ),
    ]
