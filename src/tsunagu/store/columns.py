"""What real exports call the columns several imports share (compared loosely: case, width,
spaces, `_`/`-` do not matter; see files.header_key)."""

from __future__ import annotations

# fmt: off
STORE_ID = ("store", "store_code", "shop_id", "shop_code", "shop",
            "店舗コード", "店舗ID", "店舗番号", "店舗")
SKU = ("product_id", "item_id", "item_code", "product_code", "stock_code", "stockcode",
       "jan", "jan_code", "商品コード", "JANコード", "品番", "商品ID")
MEMBER_CARD = ("card", "card_no", "card_number", "member_card_no", "member_no",
               "会員番号", "会員カード番号", "カード番号")
POSTCODE = ("zip", "zipcode", "postal_code", "郵便番号")
PREFECTURE = ("都道府県",)
ADDRESS = ("住所",)
NAME = ("full_name", "氏名", "名前")
NAME_KANA = ("kana", "furigana", "氏名カナ", "フリガナ", "カナ")
EMAIL = ("mail", "email_address", "メールアドレス", "メール")
PHONE = ("tel", "telephone", "phone_number", "mobile", "電話番号", "携帯電話")
BIRTH_DATE = ("birthday", "dob", "date_of_birth", "生年月日", "誕生日")
# fmt: on
