from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('wiki', '0013_access_stamp'),
    ]

    operations = [
        migrations.AddField(
            model_name='project',
            name='pages_version',
            field=models.PositiveBigIntegerField(default=0, editable=False),
        ),
    ]
